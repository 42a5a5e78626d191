"""Batch runner: execute the notebook suite with papermill under a profile, optionally over a parameter grid.

``python -m semscale_lib run --profile quick|cpu|paper [--grid FILE] [--only 01,02] [--out DIR] [--jobs N]``

- A **profile** (``profiles/<name>.yaml``) says which notebooks run and with which parameters::

      description: one line
      notebooks: ["00", "01", "02"]      # keys (the two-digit prefixes); default: all notebooks
      common: {device: auto}             # given to every notebook that declares the parameter
      parameters:                        # per notebook; each name must be declared by that notebook
        "01": {epochs: 3}

- A **grid** (a YAML file, or a profile's own ``grid:`` key) maps parameter names to lists of values; each notebook
  that declares some of them runs once per point of their cartesian product (in its own subfolder). Or it lists
  its ``points:`` one by one, each a mapping of parameters with an optional ``name`` for its folder and an optional
  ``notebooks`` list it reaches (datasets that need their own epochs and seeds, in some notebooks only). An optional ``notebooks: ["04"]`` key limits the grid to some notebooks. A
  ``--grid`` file replaces the profile's grid; a grid parameter that no notebook it varies declares is an error.
- Output: ``<runs_root>/<profile>-<YYYYmmdd-HHMMSS>/`` (or ``--out``) with one folder per notebook (and per grid
  point) holding the executed notebook beside what it wrote (its ``out_dir`` parameter points there), then
  ``summary.json`` and ``summary.md`` (what ran, parameters, duration, status, the failing cell and error).
- A notebook that declares a ``run_dir`` parameter is a *report* notebook (``05_report``): it runs last, once,
  with ``run_dir`` = the run folder, and writes ``report.md`` there. A notebook that declares ``runs_dir`` gets
  ``<run folder>/training-runs``: one folder of training runs shared by every notebook of the batch run (a run
  with the same settings is trained once). ``out_dir``, ``run_dir`` and ``runs_dir`` are the runner's: a profile
  or grid that sets them is refused, as is any name no notebook declares (a typo would be silently ignored).
- ``--out`` must be new or empty unless ``--force`` (then files are replaced, never deleted; the shared training
  runs in it are reused or resumed).
- Progress: ``[2/6] 02_imbalance_on_balanced_data (dataset=mnist)`` per notebook, a bar over its cells, its
  status and time, and last one line ``6 notebooks, 0 failed, 12 min 3 s; report: <path>``.
- ``--jobs N`` runs N notebooks side by side (threads in one process, one kernel each; the report notebook runs
  last, alone). A notebook whose ``threads`` parameter is None then gets cores / N CPU threads as that parameter,
  and with several GPUs one whose ``device`` is auto gets cuda:0, cuda:1, … in turn (a warning when a notebook's own
  threads oversubscribe the cores); the runner's environment is never changed. Notebooks that ask for one training
  run at once take turns on its lock: it is trained once.
- A failing notebook does not stop the others; the exit code is 1 when any failed.

``clean_notebook`` strips the volatile metadata (papermill's, execution timings) from a notebook before it is
committed.
"""
from __future__ import annotations

from .command import add_arguments, main_run
from .execute import execute_job, format_duration, kernel_threads, new_run_dir, run, share_resources, write_summary
from .jobs import Job, plan_jobs
from .notebooks import clean_notebook, volatile_metadata
from .profiles import (available_profiles, default_notebooks_dir, default_profiles_dir, discover_notebooks,
                       expand_grid, load_grid, load_profile, notebook_parameters, point_label)

__all__ = ["Job", "add_arguments", "available_profiles", "clean_notebook",
           "default_notebooks_dir", "default_profiles_dir", "discover_notebooks", "execute_job", "expand_grid",
           "format_duration", "kernel_threads", "share_resources", "load_grid", "load_profile", "main_run", "new_run_dir",
           "notebook_parameters", "plan_jobs", "point_label", "run", "volatile_metadata", "write_summary"]
