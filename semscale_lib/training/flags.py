"""The ``train`` command's flags: one per setting of :class:`~.config.TrainConfig` (DSB's as ``--dsb-<name>``),
in argparse groups, each with its valid values (from the registries) and its default in the help.

Every setting flag defaults to None ("not given"), so that only what was given overrides a preset or is compared
with a resumed run's settings. :data:`CLI_DEFAULTS` are the command's own defaults for new runs where it differs
from the library's.
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing

from ..data import DATASETS
from ..data.longtail import NAMED_PROFILES, PARAMETRIC_PROFILES
from ..dsb import POOL_MODES, DSBSettings, dsb_targets
from ..losses import LOSSES
from ..models import MODELS
from ..weights import NORMALIZATIONS, WEIGHTINGS
from .config import DSB_PREFIX, FLAT_NAMES, GROUPS, IMAGE_LIST, OPTIMIZERS, PRESETS, TrainConfig
from .schedules import SCHEDULES

#: Defaults of the command that differ from the library's (for new runs; a preset that sets the name wins): the
#: DSB weights with mean 1, as the notebooks and the paper profile use them (DSBSettings keeps "sum1", the text).
CLI_DEFAULTS = {"dsb_normalize": "mean1"}

TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")
#: The flag groups of ``train --help``: one per group of TrainConfig (data, optimisation, loss, re-weighting / DSB,
#: evaluation), the model, and the run's own flags with the device.
TITLES = {"data": "data", None: "model", "optim": "optimisation", "loss": "loss", "weighting": "re-weighting / DSB",
          "evaluation": "evaluation"}
RUN_TITLE = "run / output"


def flag_group(name: str) -> str:
    """The title of the group a setting's flag is shown in (DSB's with re-weighting)."""
    if name.startswith(DSB_PREFIX):
        return TITLES["weighting"]
    group, attribute = FLAT_NAMES[name]
    return RUN_TITLE if (group, attribute) == (None, "device") else TITLES[group]


HELP = {   # what a setting means, where its name does not say it
    "imbalance_factor": "n_max / n_min of a -lt training set",
    "profile": "class counts of a -lt training set",
    "split_seed": "seeds the long-tailed split and the per-class subset",
    "subset_per_class": "train on m images per class (nested subsets), or 'none'",
    "val_fraction": "hold out this fraction of every class of the training set for validation (0: none)",
    "augment": "random crops and flips while training",
    "data_root": "folder of the raw data; default SEMSCALE_DATA or data/raw",
    "image_root": "imagefolder: the root/<class>/<image> tree; imagelist: the folder the lists' paths start in",
    "train_list": "imagelist: the 'path label' file of the training set",
    "test_list": "imagelist: the 'path label' file of the test set",
    "image_size": "imagefolder, imagelist: side of the square images (pixels)",
    "num_workers": "imagelist: DataLoader workers",
    "max_steps": "stop after this many optimizer steps (the schedule then runs over steps), or 'none'",
    "lr": "learning rate", "weight_decay": "L2 penalty",
    "lr_step_factor": "schedule step: × this at each milestone",
    "lr_gamma": "schedule exp: × this per epoch", "seed": "seeds the model's initialisation and the batch order",
    "warmup_epochs": "linear warm-up of the learning rate", "focal_gamma": "focal loss: γ",
    "ldam_max_margin": "LDAM: the largest margin", "ldam_scale": "LDAM: the logit scale",
    "la_tau": "logit-adjusted: τ",
    "weight_reduction": "how weighted per-sample losses are averaged over a batch (auto: the rule's own)",
    "cb_beta": "cb, drw: β of the effective number", "drw_start": "drw: fraction of the epochs before re-weighting",
    "class_weights": "static: one weight per class", "milestones": "schedule step: fractions of the epochs (or of "
                                                                    "--max-steps)",
    "dsb_stage_epochs": "DSB: plain loss for the first n epochs", "dsb_alpha": "DSB: α of W = log₂(α + W′)",
    "dsb_eps": "DSB: ε of S′", "dsb_pool": "DSB: the storage pool",
    "dsb_pool_dim": "DSB: pooled feature dims, or 'none'",
    "dsb_refresh_every": "DSB: recompute S every k-th iteration", "dsb_normalize": "DSB: of the weights a ∝ 1/S",
    "dsb_log_every": "DSB: log every k-th refresh to weights.csv", "dsb_target": "DSB: the quantity q of a ∝ 1/q",
    "eval_every": "evaluate every k epochs (0: after the last only)", "eval_batch_size": "batch size of evaluation",
    "device": "auto, cpu, cuda, cuda:N or mps",
}
METAVARS = {int: "N", float: "X", str: "TEXT"}


def dataset_names() -> list[str]:
    """Every value ``--dataset`` accepts: each registered dataset, its ``-lt`` version, and ``imagelist``."""
    return [name for base in sorted(DATASETS) for name in (base, f"{base}-lt")] + [IMAGE_LIST]


def valid_values() -> dict[str, list[str]]:
    """The valid values of the settings that take a name, for the help."""
    return {"dataset": dataset_names(), "model": list(MODELS), "loss": list(LOSSES), "reweight": list(WEIGHTINGS),
            "optimizer": list(OPTIMIZERS), "schedule": list(SCHEDULES),
            "weight_reduction": ["auto", "mean", "weighted-mean"],
            "profile": list(PARAMETRIC_PROFILES) + sorted(NAMED_PROFILES),
            "dsb_pool": list(POOL_MODES), "dsb_normalize": list(NORMALIZATIONS), "dsb_target": list(dsb_targets())}


def boolean(text: str) -> bool:
    """true/false, yes/no, 1/0, on/off (any case); anything else is an error, never a silent False."""
    value = str(text).strip().lower()
    if value in TRUE or value in FALSE:
        return value in TRUE
    raise argparse.ArgumentTypeError(f"expected true/false, yes/no or 1/0, got {text!r}")


def _optional_int(text: str):
    return None if text.strip().lower() == "none" else int(text)


USAGE = "%(prog)s [--preset NAME] [--out FOLDER [--force] | --resume FOLDER] [--no-progress] [SETTINGS ...]"


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The run flags (--preset, --out, --force, --resume, --no-progress) and one flag per setting, grouped."""
    parser.usage = USAGE
    groups = {title: parser.add_argument_group(title) for title in [*TITLES.values(), RUN_TITLE]}
    run = groups[RUN_TITLE]
    run.add_argument("--preset", choices=sorted(PRESETS), metavar="NAME",
                     help=f"named protocol ({', '.join(sorted(PRESETS))}); the flags given override it")
    run.add_argument("--out", metavar="FOLDER",
                     help="output folder (must be new or empty); default runs/train/<name>-<time>")
    run.add_argument("--force", action="store_true",
                     help="write into a non-empty --out: same-named files are replaced, nothing is deleted")
    run.add_argument("--resume", metavar="FOLDER", help="folder of an interrupted run to continue")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress bar (the line per epoch and the final summary stay)")
    valid = valid_values()
    for name, default, kind in setting_declarations():
        _add_setting(groups[flag_group(name)], name, default, kind, valid.get(name))


def setting_declarations() -> list[tuple[str, object, object]]:
    """(flat name, default, type) of every setting, group by group as TrainConfig nests them (DSB's as
    ``dsb_<name>``); the types are the fields' annotations, from which each flag's parsing follows."""
    holders = {group: GROUPS[group] if group else TrainConfig for group, _ in FLAT_NAMES.values()}
    hints = {group: typing.get_type_hints(holder) for group, holder in holders.items()}
    defaults = {group: {f.name: f.default for f in dataclasses.fields(holder)} for group, holder in holders.items()}
    declared = [(name, defaults[group][attribute], hints[group][attribute])
                for name, (group, attribute) in FLAT_NAMES.items() if name != "preset"]
    dsb_hints = typing.get_type_hints(DSBSettings)
    return declared + [(DSB_PREFIX + f.name, f.default, dsb_hints[f.name]) for f in dataclasses.fields(DSBSettings)]


def _unwrap(kind) -> tuple[object, bool]:
    """``int | None`` → (int, True); ``tuple[float, ...]`` → (tuple[float, ...], False)."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) in (types.UnionType, typing.Union) and len(args) == 1:
        return args[0], True
    return kind, False


def _shown(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return " ".join(_shown(v) for v in value)
    return "none" if value is None else str(value)


def _add_setting(group, name: str, default, kind, values: list[str] | None) -> None:
    """One flag, its parsing decided by the setting's type alone: bool → true/false (and ``--no-<name>``); a tuple
    → one or more values; ``int | None`` → a number or 'none'; otherwise the type itself."""
    flag = "--" + name.replace("_", "-")
    base, optional = _unwrap(kind)
    shown = CLI_DEFAULTS.get(name, default)
    note = (f" here, as in the notebooks and the paper profile (the library's DSBSettings default is {default})"
            if name in CLI_DEFAULTS else "")
    about = f"{HELP[name]}; " if name in HELP else ""
    text = f"one of: {', '.join(values)}; " if values else ""
    tail = "" if shown is None and base is str else f"default {_shown(shown)}{note}"
    if base is bool:
        group.add_argument(flag, type=boolean, nargs="?", const=True, default=None, metavar="BOOL",
                           help=f"{about}true/false, yes/no or 1/0; alone: true (default {_shown(default)})")
        group.add_argument("--no-" + name.replace("_", "-"), dest=name, action="store_const", const=False,
                           help=f"the same as {flag} false")
        return
    if typing.get_origin(base) is tuple:
        element = typing.get_args(base)[0]
        group.add_argument(flag, type=element, nargs="+", default=None, metavar=METAVARS.get(element, "X"),
                           help=f"{about}{tail}".rstrip("; "))
        return
    parse = _optional_int if (optional and base is int) else base
    metavar = "NAME" if values else METAVARS.get(base, "X")
    group.add_argument(flag, type=parse, default=None, metavar=metavar, help=f"{about}{text}{tail}".rstrip("; "))
