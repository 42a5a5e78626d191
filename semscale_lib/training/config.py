"""Every setting of a training run (:class:`TrainConfig`), the named protocols (:data:`PRESETS`) and
:func:`make_config`, the one place where flat overrides (CLI flags, notebook parameters) become a config.

Fields the paper does not state are ours; docs/paper-notes.md §9–§10 says what we chose and why.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..data import DATASETS
from ..dsb import DSBSettings
from ..losses import LOSSES
from ..models import MODELS
from ..weights import WEIGHTINGS
from .schedules import SCHEDULES, STEP_SCHEDULES

OPTIMIZERS = ("sgd", "adam")
IMAGE_LIST = "imagelist"      # dataset name for ImageNet-LT / iNaturalist style `path label` list files
IMAGE_FOLDER = "imagefolder"  # a name of DATASETS: your own root/<class>/<image> tree, root = image_root
DSB_PREFIX = "dsb_"           # flat names of DSBSettings fields: dsb_stage_epochs, dsb_alpha, ...


@dataclass
class TrainConfig:
    """Every setting of a training run. Nested: ``dsb`` (a :class:`~semscale_lib.dsb.DSBSettings`)."""
    dataset: str = "fashion-mnist-lt"   # a name from DATASETS (e.g. "double-mnist", "imagefolder"), "-lt" suffix
                                        # for a long-tailed training set; or "imagelist"
    imbalance_factor: float | None = 100.0
    profile: str = "exp"                # "exp", "step" or a named count table ("mnist-lt-1", "mnist-lt-2")
    split_seed: int = 0                 # seeds the long-tailed split and the per-class subset
    subset_per_class: int | None = None  # train on a nested, sample-balanced subset of m images per class
    val_fraction: float = 0.0           # carve this fraction of every class out of the training set for validation
    model: str = "resnet-tiny"
    loss: str = "ce"
    reweight: str = "none"              # a rule of semscale_lib.weights.WEIGHTINGS
    weight_reduction: str = "auto"      # "mean", "weighted-mean", or "auto": the rule's default
    epochs: int = 10
    max_steps: int | None = None        # stop after this many optimizer steps (the last epoch ends early);
                                        # the schedule then runs over steps (milestones: fractions of max_steps)
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "step"              # step: ×lr_step_factor at each milestone; exp: ×lr_gamma per epoch; linear
                                        # or cosine: decay to 0 after the warm-up
    milestones: tuple[float, ...] = (0.8, 0.9)   # fractions of `epochs` (160 and 180 of 200)
    lr_step_factor: float = 0.1
    lr_gamma: float = 0.98
    warmup_epochs: int = 0
    augment: bool = True
    seed: int = 0
    device: str = "auto"
    focal_gamma: float = 1.0            # ours: the paper does not state γ
    cb_beta: float = 0.9999
    drw_start: float = 0.8              # fraction of epochs after which DRW switches on (160/200)
    ldam_max_margin: float = 0.5
    ldam_scale: float = 30.0
    la_tau: float = 1.0
    dsb: DSBSettings = field(default_factory=DSBSettings)
    eval_every: int = 1                 # evaluate on the test set every k epochs (0: after the last epoch only)
    eval_batch_size: int = 512
    data_root: str | None = None
    image_root: str | None = None       # "imagelist": folder the list files' paths are relative to;
                                        # "imagefolder(-lt)": the image tree (made absolute, so it names the run)
    train_list: str | None = None
    test_list: str | None = None
    image_size: int = 224               # "imagelist", "imagefolder(-lt)": side of the square images (pixels)
    num_workers: int = 4
    class_weights: tuple[float, ...] | None = None   # reweight="static": fixed class weights (C,)
    preset: str | None = None

    def __post_init__(self):
        # the tree's absolute path is part of the run's settings: two trees never share a run folder
        if isinstance(self.dataset, str) and split_dataset_name(self.dataset)[0] == IMAGE_FOLDER \
                and self.image_root is not None and str(self.image_root).strip():
            self.image_root = str(Path(self.image_root).expanduser().resolve())

    def validate(self) -> None:
        """Raise ValueError naming the first setting that is out of range or unknown (with the valid names)."""
        base, long_tailed = split_dataset_name(self.dataset)
        checks = [(base in DATASETS or self.dataset == IMAGE_LIST,
                   f"unknown dataset {self.dataset!r}; valid: {', '.join(sorted(DATASETS))} (add -lt for "
                   f"long-tailed; {IMAGE_FOLDER!r} with image_root) or {IMAGE_LIST!r} with image_root, "
                   "train_list, test_list"),
                  (self.dataset != IMAGE_LIST or None not in (self.image_root, self.train_list, self.test_list),
                   "dataset 'imagelist' needs image_root, train_list and test_list"),
                  (base != IMAGE_FOLDER or bool(self.image_root and str(self.image_root).strip()),
                   f"dataset {self.dataset!r} needs image_root: the folder holding <class>/<image> (or train/ and "
                   "test/)"),
                  (isinstance(self.image_size, int) and not isinstance(self.image_size, bool)
                   and self.image_size >= 1, f"image_size must be an integer ≥ 1 (pixels), got {self.image_size!r}"),
                  (self.model in MODELS, f"unknown model {self.model!r}; valid: {', '.join(MODELS)}"),
                  (self.loss in LOSSES, f"unknown loss {self.loss!r}; valid: {', '.join(LOSSES)}"),
                  (self.reweight in WEIGHTINGS, f"unknown reweight {self.reweight!r}; valid: {', '.join(WEIGHTINGS)}"),
                  (self.weight_reduction in ("auto", "mean", "weighted-mean"),
                   f"unknown weight_reduction {self.weight_reduction!r}; valid: auto, mean, weighted-mean"),
                  (self.optimizer in OPTIMIZERS, f"unknown optimizer {self.optimizer!r}; valid: {OPTIMIZERS}"),
                  (self.schedule in SCHEDULES, f"unknown schedule {self.schedule!r}; valid: {tuple(SCHEDULES)}"),
                  (isinstance(self.device, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device),
                   f"unknown device {self.device!r}; valid: auto, cpu, cuda, cuda:N (a GPU index), mps"),
                  (0 <= self.val_fraction < 1, f"val_fraction must lie in [0, 1), got {self.val_fraction}"),
                  (self.epochs >= 1, "epochs must be ≥ 1"), (self.batch_size >= 1, "batch_size must be ≥ 1"),
                  (self.lr > 0, "lr must be > 0"), (self.eval_every >= 0, "eval_every must be ≥ 0"),
                  (self.max_steps is None or self.max_steps >= 1, "max_steps must be ≥ 1 or None"),
                  (self.max_steps is None or (self.warmup_epochs == 0 and self.schedule in STEP_SCHEDULES),
                   "with max_steps the schedule runs over steps: use warmup_epochs=0 and schedule "
                   + ", ".join(STEP_SCHEDULES[:-1]) + " or " + STEP_SCHEDULES[-1]),
                  (self.subset_per_class is None or (self.subset_per_class >= 1 and not long_tailed
                                                     and self.dataset != IMAGE_LIST),
                   "subset_per_class must be ≥ 1 and needs a balanced in-memory dataset (no -lt, no imagelist)")]
        if long_tailed and self.profile in ("exp", "step"):
            checks.append((self.imbalance_factor is not None and self.imbalance_factor >= 1,
                           f"imbalance_factor must be ≥ 1 for a long-tailed dataset, got {self.imbalance_factor}"))
        if self.reweight == "static":
            checks.append((self.class_weights is not None and len(self.class_weights) > 0
                           and all(isinstance(w, (int, float)) and w >= 0 for w in self.class_weights),
                           "reweight='static' needs class_weights: a list of C numbers ≥ 0"))
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def reduction(self) -> str:
        """The batch reduction of the weighted loss: ``weight_reduction`` or, for "auto", the rule's default."""
        if self.weight_reduction != "auto":
            return self.weight_reduction
        return WEIGHTINGS[self.reweight].default_reduction

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def split_dataset_name(name: str) -> tuple[str, bool]:
    """"fashion-mnist-lt" → ("fashion-mnist", True); "cifar10" → ("cifar10", False)."""
    return (name[:-3], True) if name.endswith("-lt") else (name, False)


#: Folder of the named protocols: one YAML file of settings per preset, each explaining its choices.
PRESETS_DIR = Path(__file__).resolve().parent / "presets"


def _load_presets() -> dict[str, dict]:
    """{name: settings} of every ``presets/<name>.yaml`` (lists become tuples, as TrainConfig holds them)."""
    presets = {}
    for path in sorted(PRESETS_DIR.glob("*.yaml")):
        settings = yaml.safe_load(path.read_text())
        presets[path.stem] = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
    return presets


#: The named protocols (``make_config(preset, ...)``): paper-table1 (the paper's Table 1 protocol), cifar-lt (the
#: community CIFAR-LT protocol) and cpu-quick (the notebooks' CPU recipe).
PRESETS: dict[str, dict] = _load_presets()


def _dsb_settings(settings: dict) -> DSBSettings:
    """Pop the DSB settings out of ``settings`` (a nested ``dsb`` dict / DSBSettings and flat ``dsb_<field>``
    names, flat ones winning) and return them as one DSBSettings."""
    nested = settings.pop("dsb", None)
    values = dataclasses.asdict(nested) if isinstance(nested, DSBSettings) else dict(nested or {})
    names = {f.name for f in dataclasses.fields(DSBSettings)}
    for key in [k for k in settings if k.startswith(DSB_PREFIX)]:
        values[key[len(DSB_PREFIX):]] = settings.pop(key)
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown DSB settings {sorted(unknown)}; valid: {sorted(names)} "
                         f"(flat: {', '.join(DSB_PREFIX + n for n in sorted(names))})")
    return DSBSettings(**values)


def config_names() -> list[str]:
    """Every name :func:`make_config` accepts: the fields of TrainConfig, with DSB's as flat ``dsb_<field>``."""
    flat = [DSB_PREFIX + f.name for f in dataclasses.fields(DSBSettings)]
    return sorted([f.name for f in dataclasses.fields(TrainConfig) if f.name != "preset"] + flat)


def make_config(preset: str | None = None, **overrides) -> TrainConfig:
    """A validated TrainConfig from a named preset (or the defaults) with explicit overrides on top.

    Overrides are TrainConfig fields; DSB settings may be given nested (``dsb={...}``) or flat
    (``dsb_stage_epochs=2``). Unknown names → ValueError listing the valid ones.
    """
    settings: dict = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
        settings.update(PRESETS[preset], preset=preset)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = {k for k in overrides if k not in known and not k.startswith(DSB_PREFIX)}
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; valid: {config_names()}")
    if "dsb" in overrides and any(k.startswith(DSB_PREFIX) for k in settings):
        settings = {k: v for k, v in settings.items() if not k.startswith(DSB_PREFIX)}
    settings.update(overrides)
    settings["dsb"] = _dsb_settings(settings)
    for key in ("milestones", "class_weights"):
        if settings.get(key) is not None:
            settings[key] = tuple(settings[key])
    config = TrainConfig(**settings)
    config.validate()
    return config
