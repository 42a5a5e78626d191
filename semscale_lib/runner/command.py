"""The ``semscale run`` command: its arguments and entry point."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import paths
from .execute import run
from .jobs import plan_jobs
from .profiles import load_grid, load_profile


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="quick",
                        help="profile name in profiles/ (quick, cpu, paper) or a path to a YAML file")
    parser.add_argument("--grid", help="YAML file: parameter → list of values (cartesian product per notebook)")
    parser.add_argument("--only", help="comma-separated notebook keys, e.g. 01,02 (the report still runs last)")
    parser.add_argument("--out", help="run folder (new or empty); default runs/<profile>-<YYYYmmdd-HHMMSS>")
    parser.add_argument("--force", action="store_true",
                        help="write into a non-empty --out (files are replaced, nothing is deleted; its shared "
                             "training runs are reused or resumed)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar over each notebook's cells")
    parser.add_argument("--notebooks", help="folder of NN_name.ipynb notebooks (default: the repo's notebooks/)")
    parser.add_argument("--no-report", action="store_true", help="do not run the report notebook")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per cell; a cell that runs longer is interrupted and its notebook recorded as "
                             "timed out (default: no limit)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="notebooks run side by side (the report still runs last, alone); each kernel gets "
                             "cores / jobs CPU threads unless OMP_NUM_THREADS is set or the notebook sets threads")
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
