"""Command line: ``python -m semscale_lib {fetch,measure,train,run} ...`` (also installed as ``semscale``)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np


def _fetch(args) -> int:
    from .data import main_fetch
    return main_fetch(args.name)


def _load_array(path: str, what: str) -> np.ndarray:
    file = Path(path)
    if not file.exists():
        raise SystemExit(f"{what} file not found: {file}")
    return np.load(file, allow_pickle=False)


def _measure(args) -> int:
    from . import plotting
    from .studies.measure import measure_to_folder
    plotting.use_headless_backend()
    if args.dataset:
        features, labels, counts, accuracy, names, extra = _features_from_training(args)
    else:
        if not (args.features and args.labels):
            raise SystemExit("measure needs --features and --labels (or --dataset NAME)")
        features, labels = _load_array(args.features, "features"), _load_array(args.labels, "labels")
        counts = None if args.counts is None else _load_array(args.counts, "counts")
        accuracy = None if args.accuracy is None else _load_array(args.accuracy, "accuracy")
        names, extra = None, {"features_file": args.features}
    try:
        written = measure_to_folder(features, labels, args.out, counts=counts, accuracy=accuracy, alpha=args.alpha,
                                    class_names=names, source="dataset" if args.dataset else "files", extra=extra)
    except ValueError as error:
        raise SystemExit(f"measure: {error}")
    print(f"wrote {len(written)} files to {Path(args.out)}:")
    for path in written.values():
        print(f"  {path}")
    return 0


def _features_from_training(args):
    """Train a small model briefly on --dataset, then measure its test-set embeddings against its accuracy."""
    from .training import load_run, make_config, train
    config = make_config("cpu-quick", dataset=args.dataset, epochs=args.epochs, device=args.device,
                         imbalance_factor=args.imbalance_factor)
    run_dir = train(config, out_dir=Path(args.out) / "training")
    run = load_run(run_dir)
    data_counts = np.asarray(run["config"]["train_counts"])
    per_class = run["per_class"]
    return (run["test_features"], run["test_labels"], data_counts, per_class["accuracy"].to_numpy(),
            per_class["name"].tolist(),
            {"dataset": args.dataset, "training_run": str(run_dir), "model": config.model,
             "epochs": config.epochs, "features": "test-set embeddings of the trained model"})


def _train(args) -> int:
    from .training import make_config, train
    overrides = {k: v for k, v in vars(args).items()
                 if k not in {"command", "func", "preset", "out", "resume", "no_progress"} and v is not None}
    try:
        if args.resume:
            config = None
            if overrides or args.preset:  # only what was given is compared with the saved run's settings
                saved = json.loads((Path(args.resume) / "config.json").read_text())["config"]
                preset = args.preset or saved.pop("preset", None)
                saved.pop("preset", None)
                config = make_config(preset, **{**saved, **overrides})
            out = train(config, resume=args.resume, progress=not args.no_progress)
        else:
            out = train(make_config(args.preset, **overrides), out_dir=args.out, progress=not args.no_progress)
    except ValueError as error:
        raise SystemExit(f"train: {error}")
    except FloatingPointError as error:
        raise SystemExit(f"train: the run diverged: {error}. Its folder keeps the last finished epoch (or only its "
                         "settings); start a new run with a smaller --lr (see the README, 'When a run stops').")
    print(f"run folder: {out}")
    return 0


def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    from .dsb import DSBSettings
    from .training import PRESETS, TrainConfig
    from .training.config import DSB_PREFIX
    parser.add_argument("--preset", choices=sorted(PRESETS), help="named protocol; explicit options override it")
    parser.add_argument("--out", help="output folder (must be new or empty); default runs/train/<name>-<time>")
    parser.add_argument("--resume", help="folder of an interrupted run to continue")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    fields = [(f.name, f.default) for f in dataclasses.fields(TrainConfig) if f.name not in ("preset", "dsb")]
    fields += [(DSB_PREFIX + f.name, f.default) for f in dataclasses.fields(DSBSettings)]
    for name, default in fields:
        flag = "--" + name.replace("_", "-")
        if name == "milestones":
            parser.add_argument(flag, type=float, nargs="+", default=None, help="fractions of epochs, e.g. 0.8 0.9")
        elif name == "class_weights":
            parser.add_argument(flag, type=float, nargs="+", default=None,
                                help="with --reweight static: one weight per class")
        elif isinstance(default, bool):
            parser.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes", "on"), default=None,
                                help=f"true/false (default {default})")
        elif name in ("imbalance_factor",):
            parser.add_argument(flag, type=float, default=None, help=f"default {default}")
        elif name in ("dsb_pool_dim", "subset_per_class"):
            parser.add_argument(flag, type=lambda s: None if s.lower() == "none" else int(s), default=None,
                                help=f"an integer or 'none' (default {default})")
        else:
            kind = type(default) if default is not None else str
            parser.add_argument(flag, type=kind, default=None, help=f"default {default}")


def _run(args) -> int:
    from .runner import main_run
    return main_run(args)


def _add_run_parser(sub) -> None:
    """``run``: the batch runner (semscale_lib.runner) — the notebook suite under a profile, optionally a grid."""
    from .runner import add_arguments
    run = sub.add_parser("run", help="execute the notebooks with papermill under a profile (and a grid); "
                                     "writes runs/<profile>-<time>/ with summary and report.md")
    add_arguments(run)
    run.set_defaults(func=_run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m semscale_lib",
                                     description="Measure, see and fix semantic scale imbalance.")
    sub = parser.add_subparsers(dest="command", required=True)

    fetch = sub.add_parser("fetch", help="make a dataset available locally (says what it tried on failure)")
    fetch.add_argument("name", help="cifar10, cifar100, mnist, fashion-mnist or digits")
    fetch.set_defaults(func=_fetch)

    measure = sub.add_parser("measure", help="per-class semantic scales (+ correlation with accuracy) to a folder")
    measure.add_argument("--features", help=".npy of shape (N, d)")
    measure.add_argument("--labels", help=".npy of shape (N,)")
    measure.add_argument("--counts", help=".npy of shape (C,): training counts (for N and E_n)")
    measure.add_argument("--accuracy", help=".npy of shape (C,): per-class accuracy → correlation table")
    measure.add_argument("--alpha", type=float, default=1.0, help="α of W = log2(α + W'); 2 for long-tailed data")
    measure.add_argument("--out", required=True, help="output folder")
    measure.add_argument("--dataset", help="instead of files: train a small model briefly on this dataset "
                                           "(e.g. fashion-mnist, fashion-mnist-lt) and measure its embeddings")
    measure.add_argument("--epochs", type=int, default=3, help="with --dataset: training epochs")
    measure.add_argument("--imbalance-factor", type=float, default=100.0, help="with --dataset NAME-lt")
    measure.add_argument("--device", default="auto")
    measure.set_defaults(func=_measure)

    train = sub.add_parser("train", help="train one model (CE/focal/LDAM/BS/LA × none/cb/drw/dsb)")
    _add_train_arguments(train)
    train.set_defaults(func=_train)

    _add_run_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
