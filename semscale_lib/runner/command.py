"""The ``semscale run`` command: its arguments and entry point."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import paths
from .execute import run
from .jobs import plan_jobs
from .plan import plan_runs, plan_table, print_plan
from .profiles import load_grid, load_profile
from .train_runs import EXECUTORS, local_slots, train_runs


def _add_selection(parser: argparse.ArgumentParser, *, only: str = "comma-separated notebook keys, e.g. 01,02"
                   ) -> None:
    """The flags that choose what runs: profile, grid, notebooks (--only) and the folder they are read from."""
    parser.add_argument("--profile", default="quick",
                        help="profile name in profiles/ (quick, cpu, paper) or a path to a YAML file")
    parser.add_argument("--grid", help="YAML file: parameter → list of values (cartesian product per notebook)")
    parser.add_argument("--only", help=only)
    parser.add_argument("--notebooks", help="folder of NN_name.ipynb notebooks (default: the repo's notebooks/)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_selection(parser, only="comma-separated notebook keys, e.g. 01,02 (the report still runs last)")
    parser.add_argument("--out", help="run folder (new, empty, or holding only the training runs of `semscale "
                                      "train-runs`); default runs/<profile>-<YYYYmmdd-HHMMSS>")
    parser.add_argument("--force", action="store_true",
                        help="write into a non-empty --out (files are replaced, nothing is deleted; its shared "
                             "training runs are reused or resumed)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar over each notebook's cells")
    parser.add_argument("--no-report", action="store_true", help="do not run the report notebook")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per cell; a cell that runs longer is interrupted and its notebook recorded as "
                             "timed out (default: no limit)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="notebooks run side by side (the report still runs last, alone); a notebook whose threads "
                             "is None gets cores / jobs CPU threads, one whose device is auto a GPU in turn")
    parser.add_argument("--list", action="store_true", help="print the jobs and their parameters, run nothing")


def main_run(args) -> int:
    """Entry point of ``python -m semscale_lib run``; errors in what was given raise (ValueError, OSError) for
    the command line to report on one line."""
    if args.timeout is not None and not args.timeout > 0:
        raise ValueError(f"--timeout must be a number of seconds > 0 (per cell), got {args.timeout:g}")
    profile = load_profile(args.profile)
    grid = load_grid(args.grid) if args.grid else profile.get("grid")   # a --grid file replaces the profile's own
    only = [k for k in args.only.split(",") if k.strip()] if args.only else None
    if args.list:
        jobs = plan_jobs(profile, Path(args.out or paths.runs_root() / f"{profile['name']}-<time>"),
                         notebooks_dir=args.notebooks, grid=grid, only=only, report=not args.no_report)
        for job in jobs:
            print(f"{job.label}: {json.dumps(job.parameters)}")
        return 0
    code, _ = run(profile, grid=grid, only=only, out=args.out, notebooks_dir=args.notebooks,
                  report=not args.no_report, timeout=args.timeout, force=args.force, progress=not args.no_progress,
                  jobs=args.jobs)
    return code


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    _add_selection(parser)
    parser.add_argument("--out", help="the run folder the runs would train into (its training-runs/ is read for "
                                      "what is finished); default: none yet, every run new")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON (one object per run)")


def add_train_runs_arguments(parser: argparse.ArgumentParser) -> None:
    _add_selection(parser)
    parser.add_argument("--out", required=True,
                        help="run folder: runs go to <out>/training-runs; then `semscale run --out <out>` executes "
                             "the notebooks on them (the same command again resumes a killed one)")
    parser.add_argument("--executor", default="local", choices=EXECUTORS,
                        help="local: worker processes here (every visible GPU, or the CPU); submitit-local: "
                             "submitit's local executor; slurm: one Slurm job per run through submitit")
    parser.add_argument("--gpus", type=int, help="local: GPUs to use (default: every visible one; 0: the CPU)")
    parser.add_argument("--runs-per-gpu", type=int, default=4,
                        help="local: runs side by side on each GPU (small models leave a large GPU idle)")
    parser.add_argument("--workers", type=int, help="local, on the CPU: runs side by side (default: cores / threads)")
    parser.add_argument("--threads", type=int, help="CPU threads per run (default: 1 on the CPU, the cores shared "
                                                    "out on GPUs)")
    parser.add_argument("--partition", help="slurm: the partition to submit to")
    parser.add_argument("--time-min", type=int, default=24 * 60, help="submitit: time limit per run (minutes)")
    parser.add_argument("--gpus-per-job", type=int, help="submitit: GPUs per job (default: 1 for slurm, 0 local)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar over the runs")


def _selection(args):
    profile = load_profile(args.profile)
    grid = load_grid(args.grid) if args.grid else profile.get("grid")
    only = [k for k in args.only.split(",") if k.strip()] if args.only else None
    return profile, grid, only


def main_plan(args) -> int:
    """Entry point of ``semscale plan``: the training runs a profile needs, each once, and their state."""
    import sys
    profile, grid, only = _selection(args)
    out = Path(args.out) if args.out else paths.runs_root() / f"{profile['name']}-<time>"
    plan = plan_runs(profile, out, grid=grid, only=only, notebooks_dir=args.notebooks)
    if args.json:
        print(json.dumps({"runs_dir": str(plan.runs_dir), "runs": plan_table(plan), "waiting": plan.waiting,
                          "waiting_images": plan.waiting_images,
                          "deferred": plan.deferred, "summary": plan.summary()}, indent=2))
    else:
        print_plan(plan, sys.stdout)
    return 0


def main_train_runs(args) -> int:
    """Entry point of ``semscale train-runs``."""
    profile, grid, only = _selection(args)
    options = {"threads": args.threads, "partition": args.partition, "time_min": args.time_min,
               "gpus_per_job": args.gpus_per_job if args.gpus_per_job is not None else
               (1 if args.executor == "slurm" else 0)}
    slots = local_slots(gpus=args.gpus, runs_per_gpu=args.runs_per_gpu, workers=args.workers, threads=args.threads) \
        if args.executor == "local" else None
    code, _ = train_runs(profile, args.out, grid=grid, only=only, notebooks_dir=args.notebooks,
                         executor=args.executor, slots=slots, options=options, progress=not args.no_progress)
    return code
