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
from ..data.settings import IMAGE_FOLDER, IMAGE_LIST, DataSettings, split_dataset_name
from ..dsb import DSBSettings
from ..losses import LOSSES
from ..models import MODELS
from ..weights import WEIGHTINGS
from .schedules import SCHEDULES, STEP_SCHEDULES

OPTIMIZERS = ("sgd", "adam")
DSB_PREFIX = "dsb_"           # flat names of DSBSettings fields: dsb_stage_epochs, dsb_alpha, ...


@dataclass
class OptimSettings:
    """How the model is optimised: budget, optimizer, learning-rate schedule, and the seed of its initialisation
    and batch order."""
    epochs: int = 10
    max_steps: int | None = None        # stop after this many optimizer steps (the last epoch ends early);
                                        # the schedule then runs over steps (milestones: fractions of max_steps)
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "step"              # a name of training.schedules.SCHEDULES
    milestones: tuple[float, ...] = (0.8, 0.9)   # fractions of `epochs` (160 and 180 of 200)
    lr_step_factor: float = 0.1
    lr_gamma: float = 0.98
    warmup_epochs: int = 0
    seed: int = 0


@dataclass
class LossSettings:
    """The base loss (``name``: a key of semscale_lib.losses.LOSSES) and the options losses declare
    (``config_options`` of their registry entry)."""
    name: str = "ce"
    focal_gamma: float = 1.0            # ours: the paper does not state γ
    ldam_max_margin: float = 0.5
    ldam_scale: float = 30.0
    la_tau: float = 1.0


@dataclass
class WeightingSettings:
    """The class-weight rule (``rule``: a key of semscale_lib.weights.WEIGHTINGS), its batch reduction and its
    options; DSB's settings as their own object."""
    rule: str = "none"
    reduction: str = "auto"             # "mean", "weighted-mean", or "auto": the rule's default
    cb_beta: float = 0.9999
    drw_start: float = 0.8              # fraction of epochs after which DRW switches on (160/200)
    class_weights: tuple[float, ...] | None = None   # rule "static": fixed class weights (C,)
    dsb: DSBSettings = field(default_factory=DSBSettings)


@dataclass
class EvalSettings:
    """When and in what batches the test set is evaluated."""
    every: int = 1                      # every k epochs (0: after the last epoch only)
    batch_size: int = 512


@dataclass
class TrainConfig:
    """Every setting of a training run, nested by concern: ``data``, ``model`` (a name of MODELS), ``optim``,
    ``loss``, ``weighting`` (with ``dsb``), ``evaluation``, ``device`` and the ``preset`` it started from.

    The settings' flat names (``epochs``, ``loss``, ``reweight``, ``dsb_stage_epochs``, …: :data:`FLAT_NAMES`) are
    what :func:`make_config`, the command line, the notebooks and a run's ``config.json`` speak; :meth:`to_dict`
    gives them, and an old run folder's flat ``config.json`` reads back through :func:`make_config` unchanged."""
    data: DataSettings = field(default_factory=DataSettings)
    model: str = "resnet-tiny"
    optim: OptimSettings = field(default_factory=OptimSettings)
    loss: LossSettings = field(default_factory=LossSettings)
    weighting: WeightingSettings = field(default_factory=WeightingSettings)
    evaluation: EvalSettings = field(default_factory=EvalSettings)
    device: str = "auto"
    preset: str | None = None

    def validate(self) -> None:
        """Raise ValueError naming the first setting that is out of range or unknown (with the valid names)."""
        data, optim, weighting = self.data, self.optim, self.weighting
        base, long_tailed = split_dataset_name(data.dataset)
        checks = [(base in DATASETS or data.dataset == IMAGE_LIST,
                   f"unknown dataset {data.dataset!r}; valid: {', '.join(sorted(DATASETS))} (add -lt for "
                   f"long-tailed; {IMAGE_FOLDER!r} with image_root) or {IMAGE_LIST!r} with image_root, "
                   "train_list, test_list"),
                  (data.dataset != IMAGE_LIST or None not in (data.image_root, data.train_list, data.test_list),
                   "dataset 'imagelist' needs image_root, train_list and test_list"),
                  (base != IMAGE_FOLDER or bool(data.image_root and str(data.image_root).strip()),
                   f"dataset {data.dataset!r} needs image_root: the folder holding <class>/<image> (or train/ and "
                   "test/)"),
                  (isinstance(data.image_size, int) and not isinstance(data.image_size, bool)
                   and data.image_size >= 1, f"image_size must be an integer ≥ 1 (pixels), got {data.image_size!r}"),
                  (self.model in MODELS, f"unknown model {self.model!r}; valid: {', '.join(MODELS)}"),
                  (self.loss.name in LOSSES, f"unknown loss {self.loss.name!r}; valid: {', '.join(LOSSES)}"),
                  (weighting.rule in WEIGHTINGS,
                   f"unknown reweight {weighting.rule!r}; valid: {', '.join(WEIGHTINGS)}"),
                  (weighting.reduction in ("auto", "mean", "weighted-mean"),
                   f"unknown weight_reduction {weighting.reduction!r}; valid: auto, mean, weighted-mean"),
                  (optim.optimizer in OPTIMIZERS, f"unknown optimizer {optim.optimizer!r}; valid: {OPTIMIZERS}"),
                  (optim.schedule in SCHEDULES,
                   f"unknown schedule {optim.schedule!r}; valid: {tuple(SCHEDULES)}"),
                  (isinstance(self.device, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device),
                   f"unknown device {self.device!r}; valid: auto, cpu, cuda, cuda:N (a GPU index), mps"),
                  (0 <= data.val_fraction < 1, f"val_fraction must lie in [0, 1), got {data.val_fraction}"),
                  (optim.epochs >= 1, "epochs must be ≥ 1"), (optim.batch_size >= 1, "batch_size must be ≥ 1"),
                  (optim.lr > 0, "lr must be > 0"), (self.evaluation.every >= 0, "eval_every must be ≥ 0"),
                  (optim.max_steps is None or optim.max_steps >= 1, "max_steps must be ≥ 1 or None"),
                  (optim.max_steps is None or (optim.warmup_epochs == 0 and optim.schedule in STEP_SCHEDULES),
                   "with max_steps the schedule runs over steps: use warmup_epochs=0 and schedule "
                   + ", ".join(STEP_SCHEDULES[:-1]) + " or " + STEP_SCHEDULES[-1]),
                  (data.subset_per_class is None or (data.subset_per_class >= 1 and not long_tailed
                                                     and data.dataset != IMAGE_LIST),
                   "subset_per_class must be ≥ 1 and needs a balanced in-memory dataset (no -lt, no imagelist)")]
        if long_tailed and data.profile in ("exp", "step"):
            checks.append((data.imbalance_factor is not None and data.imbalance_factor >= 1,
                           f"imbalance_factor must be ≥ 1 for a long-tailed dataset, got {data.imbalance_factor}"))
        if weighting.rule == "static":
            checks.append((weighting.class_weights is not None and len(weighting.class_weights) > 0
                           and all(isinstance(w, (int, float)) and w >= 0 for w in weighting.class_weights),
                           "reweight='static' needs class_weights: a list of C numbers ≥ 0"))
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def reduction(self) -> str:
        """The batch reduction of the weighted loss: ``weighting.reduction`` or, for "auto", the rule's default."""
        if self.weighting.reduction != "auto":
            return self.weighting.reduction
        return WEIGHTINGS[self.weighting.rule].default_reduction

    def to_dict(self) -> dict:
        """The settings by their flat names (DSB's as the nested ``dsb`` dict): what a run's config.json holds and
        what its settings key is computed from."""
        flat = {name: getattr(getattr(self, group) if group else self, attribute)
                for name, (group, attribute) in FLAT_NAMES.items()}
        flat["dsb"] = dataclasses.asdict(self.weighting.dsb)
        return flat


#: Every setting's flat name → (the TrainConfig attribute holding its group, or None for top-level; its name
#: there). The flat names are the settings' public vocabulary (make_config, the CLI, notebooks, config.json).
GROUPS = {"data": DataSettings, "optim": OptimSettings, "loss": LossSettings, "weighting": WeightingSettings,
          "evaluation": EvalSettings}
RENAMED = {("loss", "name"): "loss", ("weighting", "rule"): "reweight", ("weighting", "reduction"): "weight_reduction",
           ("evaluation", "every"): "eval_every", ("evaluation", "batch_size"): "eval_batch_size"}
FLAT_NAMES: dict[str, tuple[str | None, str]] = {
    **{RENAMED.get((group, f.name), f.name): (group, f.name)
       for group, kind in GROUPS.items() for f in dataclasses.fields(kind) if f.name != "dsb"},
    "model": (None, "model"), "device": (None, "device"), "preset": (None, "preset")}


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
    """Every name :func:`make_config` accepts: the flat names of the settings, with DSB's as ``dsb_<field>``."""
    flat = [DSB_PREFIX + f.name for f in dataclasses.fields(DSBSettings)]
    return sorted([name for name in FLAT_NAMES if name != "preset"] + ["dsb"] + flat)


def make_config(preset: str | None = None, **overrides) -> TrainConfig:
    """A validated TrainConfig from a named preset (or the defaults) with explicit overrides on top.

    Overrides are flat setting names (:data:`FLAT_NAMES`: ``epochs=…``, ``loss=…``, ``reweight=…``); DSB settings
    may be given nested (``dsb={...}``) or flat (``dsb_stage_epochs=2``). A run's saved ``config.json`` settings
    (:meth:`TrainConfig.to_dict`, also of folders written before the settings were nested) read back the same way.
    Unknown names → ValueError listing the valid ones.
    """
    settings: dict = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
        settings.update(PRESETS[preset], preset=preset)
    unknown = {k for k in overrides if k not in FLAT_NAMES and k != "dsb" and not k.startswith(DSB_PREFIX)}
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; valid: {config_names()}")
    if "dsb" in overrides and any(k.startswith(DSB_PREFIX) for k in settings):
        settings = {k: v for k, v in settings.items() if not k.startswith(DSB_PREFIX)}
    settings.update(overrides)
    dsb = _dsb_settings(settings)
    for key in ("milestones", "class_weights"):
        if settings.get(key) is not None:
            settings[key] = tuple(settings[key])
    grouped: dict[str | None, dict] = {group: {} for group in GROUPS}
    grouped[None] = {}
    for name, value in settings.items():
        group, attribute = FLAT_NAMES[name]
        grouped[group][attribute] = value
    config = TrainConfig(**grouped[None], **{group: GROUPS[group](**grouped[group]) for group in GROUPS})
    config.weighting.dsb = dsb
    config.validate()
    return config
