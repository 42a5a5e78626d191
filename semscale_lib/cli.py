"""Command line: ``python -m semscale_lib {fetch,measure,train,run,plan,train-runs} ...`` (also installed as ``semscale``).

A mistake in what was given (a missing or malformed file, an output folder that holds other work, an unknown
name, a device this machine lacks, a diverged run) ends with one line ``semscale <command>: error: <message>`` on
stderr and exit status 1, never a traceback; ``SEMSCALE_DEBUG=1`` re-raises it for the traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from .settings import environment

PACKAGE = "semscale"
PACKAGE_DIR = Path(__file__).resolve().parent
DEBUG_VARIABLE = "SEMSCALE_DEBUG"
NPY_MAGIC = b"\x93NUMPY"
EPILOG = (f"A mistake in the input ends with one line 'semscale <command>: error: <message>' and exit status 1; set "
          f"{DEBUG_VARIABLE}=1 for the full traceback instead.")


def _fetch(args) -> int:
    from .data import main_fetch
    return main_fetch(args.name)


def _check_out(args) -> None:
    """``--out ""`` would write into the current folder: refused here, with the flag's name."""
    if getattr(args, "out", None) is not None and not args.out.strip():
        raise ValueError(f"--out must name a folder, got {args.out!r}")


def _load_array(path: str, what: str) -> np.ndarray:
    """A .npy file as an array, refusing (one line, naming the file and what is expected) anything else: a missing
    file, a folder, text or pickles renamed .npy, .npz archives, object arrays (never unpickled), truncated files."""
    if not str(path).strip():
        raise ValueError(f"--{what} must name a .npy file, got {path!r}")
    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(f"{what} file not found: {file}")
    if file.is_dir():
        raise IsADirectoryError(f"{what} file {file}: expected a .npy file, got a folder")
    try:
        with open(file, "rb") as handle:
            head = handle.read(len(NPY_MAGIC))
    except OSError as error:
        raise OSError(f"{what} file {file}: cannot read it ({error.strerror or error})") from None
    if head.startswith(b"PK"):
        raise ValueError(f"{what} file {file}: expected one array written by numpy.save (.npy), got a .npz/zip "
                         "archive; save the array itself with numpy.save")
    if head != NPY_MAGIC:
        raise ValueError(f"{what} file {file}: expected a .npy file written by numpy.save, got another format "
                         f"(it starts with {head!r}: text, a pickle or another file renamed .npy?)")
    try:
        return np.load(file, allow_pickle=False)
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ValueError(f"{what} file {file}: expected an array of numbers, got an object (pickled) array, "
                             "which is never loaded (unpickling can run code)") from None
        raise ValueError(f"{what} file {file}: expected a complete .npy file, could not read it ({error})") from None
    except (EOFError, OSError) as error:
        raise ValueError(f"{what} file {file}: expected a complete .npy file, could not read it "
                         f"({type(error).__name__}: {error})") from None


def _measure_inputs(args):
    """features, labels, counts, accuracy from the .npy files, each checked against what measure expects."""
    from .imbalance import check_features, check_labels, check_per_class
    features_name, labels_name = f"features file {args.features}", f"labels file {args.labels}"
    features = _load_array(args.features, "features")
    check_features(features, features_name)
    labels = _load_array(args.labels, "labels")
    check_labels(labels, len(features), labels_name, rows=features_name)
    labels = labels.astype(np.int64)
    present = np.bincount(labels)
    if len(present) < 2 or np.any(present == 0):
        raise ValueError(f"{labels_name}: expected class indices 0 … C−1 (C ≥ 2) each with at least one sample, "
                         + (f"classes {np.flatnonzero(present == 0).tolist()} have none" if len(present) >= 2
                            else "got a single class"))
    if np.all(present == 1):
        raise ValueError(f"{labels_name}: every class has a single sample, so every S′ is 0 (one vector spans no "
                         "volume) and S′/max S′ is undefined; expected at least one class with ≥ 2 samples")
    classes = len(present)
    counts = accuracy = None
    if args.counts is not None:
        counts = check_per_class(_load_array(args.counts, "counts"), classes, f"counts file {args.counts}",
                                 f"one training count per class 0 … {classes - 1}")
        if np.any(counts < 0):
            raise ValueError(f"counts file {args.counts}: expected counts ≥ 0, found {counts.min():g}")
    if args.accuracy is not None:
        accuracy = check_per_class(_load_array(args.accuracy, "accuracy"), classes, f"accuracy file {args.accuracy}",
                                   f"one accuracy per class 0 … {classes - 1}")
    return features, labels, counts, accuracy


def _measure(args) -> int:
    from . import plotting
    from .studies.measure import measure_to_folder
    _check_out(args)
    if args.epochs < 1:
        raise ValueError(f"--epochs must be ≥ 1, got {args.epochs}")
    plotting.use_headless_backend()
    if args.dataset is not None:
        if args.features or args.labels or args.counts or args.accuracy:
            raise ValueError("give either --dataset NAME or --features/--labels files, not both")
        features, labels, counts, accuracy, names, extra = _features_from_training(args)
        force = True   # the folder was claimed before training into it
    else:
        if not (args.features and args.labels):
            raise ValueError("measure needs --features and --labels (or --dataset NAME)")
        features, labels, counts, accuracy = _measure_inputs(args)
        names, extra, force = None, {"features_file": args.features}, args.force
    written = measure_to_folder(features, labels, args.out, counts=counts, accuracy=accuracy, alpha=args.alpha,
                                class_names=names, source="dataset" if args.dataset else "files", extra=extra,
                                force=force)
    print(f"wrote {len(written)} files to {Path(args.out)}:")
    for path in written.values():
        print(f"  {path}")
    return 0


def _features_from_training(args):
    """Train a small model briefly on --dataset, then measure its test-set embeddings against its accuracy."""
    from .imbalance import _check_alpha
    from .paths import claim_output_dir
    from .training import load_run, make_config, train
    from .training.trainer import check_device
    config = make_config("cpu-quick", dataset=args.dataset, epochs=args.epochs, device=args.device,
                         imbalance_factor=args.imbalance_factor)
    _check_alpha(args.alpha)
    check_device(config.device)
    out = claim_output_dir(args.out, force=args.force)      # before minutes of training, not after
    run_dir = train(config, out_dir=out / "training", force=args.force)
    run = load_run(run_dir)
    data_counts = np.asarray(run.train_counts)
    per_class = run.per_class
    return (run.test_features, run.test_labels, data_counts, per_class["accuracy"].to_numpy(),
            per_class["name"].tolist(),
            {"dataset": args.dataset, "training_run": str(run_dir), "model": config.model,
             "epochs": config.optim.epochs, "features": "test-set embeddings of the trained model"})


def _train(args) -> int:
    from .training import PRESETS, make_config, train
    from .training.flags import CLI_DEFAULTS
    _check_out(args)
    overrides = {k: v for k, v in vars(args).items()
                 if k not in {"command", "func", "preset", "out", "resume", "no_progress", "force"} and v is not None}
    if args.resume is not None:
        if args.out is not None:
            raise ValueError("give --out for a new run or --resume FOLDER to continue one, not both")
        config = None
        if overrides or args.preset:  # only what was given is compared with the saved run's settings
            try:
                saved = json.loads((Path(args.resume) / "config.json").read_text())["config"]
                saved = dict(saved)
            except (OSError, ValueError, KeyError, TypeError):
                saved = None          # train() below says what is wrong with the folder
            if saved is not None:
                preset = args.preset or saved.pop("preset", None)
                saved.pop("preset", None)
                config = make_config(preset, **{**saved, **overrides})
        train(config, resume=args.resume, progress=not args.no_progress, log=True)
    else:
        preset_settings = PRESETS.get(args.preset, {}) if args.preset else {}
        defaults = {k: v for k, v in CLI_DEFAULTS.items() if k not in preset_settings}
        train(make_config(args.preset, **{**defaults, **overrides}), out_dir=args.out, progress=not args.no_progress,
              force=args.force, log=True)   # train() prints "run folder: ..." first
    return 0


def _run(args) -> int:
    from .runner import main_run
    _check_out(args)
    return main_run(args)


def _plan(args) -> int:
    from .runner.command import main_plan
    _check_out(args)
    return main_plan(args)


def _train_runs(args) -> int:
    from .runner.command import main_train_runs
    _check_out(args)
    return main_train_runs(args)


def _add_plan_parsers(sub) -> None:
    """``plan`` and ``train-runs``: a profile's training runs listed, then trained, before its notebooks run."""
    from .runner.command import add_plan_arguments, add_train_runs_arguments
    plan = sub.add_parser("plan", help="list every training run a profile needs (each once), its state and size",
                          epilog=EPILOG, command="plan")
    add_plan_arguments(plan)
    plan.set_defaults(func=_plan)
    train_runs = sub.add_parser("train-runs", help="train every run of a profile's plan (local GPUs/CPU, or Slurm "
                                                   "through submitit) before its notebooks run", epilog=EPILOG,
                                command="train-runs")
    add_train_runs_arguments(train_runs)
    train_runs.set_defaults(func=_train_runs)


def _add_run_parser(sub) -> None:
    """``run``: the batch runner (semscale_lib.runner) — the notebook suite under a profile, optionally a grid."""
    from .runner import add_arguments
    run = sub.add_parser("run", help="execute the notebooks with papermill under a profile (and a grid); "
                                     "writes runs/<profile>-<time>/ with summary and report.md", epilog=EPILOG,
                         command="run")
    add_arguments(run)
    run.set_defaults(func=_run)


class Parser(argparse.ArgumentParser):
    """A usage mistake (an unknown flag, a bad value) ends like every other mistake in the input: one line
    ``semscale <command>: error: <message>`` and exit status 1, instead of argparse's usage block and status 2."""

    def __init__(self, *args, command: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.command = command

    def error(self, message: str):
        name = f"semscale {self.command}" if self.command else "semscale"
        if self.command is None and "required: command" in message:
            message = "give a command: fetch, measure, train, run, plan or train-runs"
        raise SystemExit(f"{name}: error: {message} (see {self.prog} --help)")


def package_version() -> str:
    """The installed package's version (importlib.metadata); ``__version__`` when run from a plain checkout."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        from . import __version__
        return __version__


def build_parser() -> argparse.ArgumentParser:
    prog = "semscale" if Path(sys.argv[0]).name == "semscale" else "python -m semscale_lib"
    parser = Parser(prog=prog, description="Measure, see and fix semantic scale imbalance.", epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"{PACKAGE} {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    fetch = sub.add_parser("fetch", help="make a dataset available locally (says what it tried on failure)",
                           epilog=EPILOG, command="fetch")
    fetch.add_argument("name", help="cifar10, cifar100, mnist, fashion-mnist or digits")
    fetch.set_defaults(func=_fetch)

    measure = sub.add_parser("measure", help="per-class semantic scales (+ correlation with accuracy) to a folder",
                             epilog=EPILOG, command="measure")
    measure.add_argument("--features", help=".npy of shape (N, d)")
    measure.add_argument("--labels", help=".npy of shape (N,)")
    measure.add_argument("--counts", help=".npy of shape (C,): training counts (for N and E_n)")
    measure.add_argument("--accuracy", help=".npy of shape (C,): per-class accuracy → correlation table")
    measure.add_argument("--alpha", type=float, default=1.0, help="α of W = log2(α + W'); 2 for long-tailed data")
    measure.add_argument("--out", required=True, help="output folder (must be new or empty)")
    measure.add_argument("--force", action="store_true",
                         help="write into a non-empty --out: same-named files are replaced, nothing is deleted")
    measure.add_argument("--dataset", help="instead of files: train a small model briefly on this dataset "
                                           "(e.g. fashion-mnist, fashion-mnist-lt) and measure its embeddings")
    measure.add_argument("--epochs", type=int, default=3, help="with --dataset: training epochs")
    measure.add_argument("--imbalance-factor", type=float, default=100.0, help="with --dataset NAME-lt")
    measure.add_argument("--device", default="auto")
    measure.set_defaults(func=_measure)

    from .training.flags import add_train_arguments
    train = sub.add_parser("train", help="train one model (CE/focal/LDAM/BS/LA × none/cb/drw/static/dsb)",
                           epilog=EPILOG, command="train")
    add_train_arguments(train)
    train.set_defaults(func=_train)

    _add_run_parser(sub)
    _add_plan_parsers(sub)
    return parser


def _is_user_error(error: BaseException) -> bool:
    """A mistake in what was given, not a bug: bad values and types, files and folders, a diverged run, and
    CUDA that was asked for but is missing or out of memory."""
    if isinstance(error, (ValueError, TypeError, OSError, FloatingPointError)):
        return True
    return isinstance(error, RuntimeError) and "cuda" in str(error).lower()


def error_line(command: str, error: BaseException) -> str:
    """``semscale <command>: error: <message>`` on one line."""
    message = " ".join(part.strip() for part in str(error).splitlines() if part.strip()) or type(error).__name__
    if isinstance(error, FloatingPointError):
        message = (f"the run diverged: {message}; this is recorded in the run folder (diverged.json), which is "
                   "never resumed since it would diverge again: start a new run (another --out) with a smaller --lr "
                   "(README, 'When a run stops')")
    return f"semscale {command}: error: {message}"


@contextlib.contextmanager
def one_line_warnings(command: str):
    """Warnings raised by semscale's own code print as one line ``semscale <command>: warning: <message>`` on
    stderr (others as Python prints them)."""
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if Path(filename).resolve().is_relative_to(PACKAGE_DIR):
            print(f"semscale {command}: warning: {message}", file=sys.stderr, flush=True)
        else:
            original(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def main(argv: list[str] | None = None) -> int:
    """Run one command; a user error ends with :func:`error_line` (SystemExit, status 1) unless SEMSCALE_DEBUG."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:   # named after the command they were given to, not the top-level parser
        raise SystemExit(f"semscale {args.command}: error: unrecognized arguments: {' '.join(unknown)} (see "
                         f"{parser.prog} {args.command} --help)")
    try:
        with one_line_warnings(args.command):
            return int(args.func(args) or 0)
    except Exception as error:
        if not _is_user_error(error) or environment().debug:
            raise
        raise SystemExit(error_line(args.command, error)) from None


if __name__ == "__main__":
    sys.exit(main())
