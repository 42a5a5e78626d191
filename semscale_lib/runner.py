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
  last, alone). Each kernel then gets cores / N CPU threads through ``OMP_NUM_THREADS`` unless that is set or the
  notebook's own ``threads`` parameter says otherwise (a warning when that oversubscribes the cores). Notebooks
  that ask for one training run at once take turns on its lock: it is trained once.
- A failing notebook does not stop the others; the exit code is 1 when any failed.

``clean_notebook`` strips the volatile metadata (papermill's, execution timings) from a notebook before it is
committed.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import queue
import re
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import yaml

from . import paths

NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_[\w.-]+\.ipynb$")
REPORT_PARAMETER = "run_dir"
OUT_PARAMETER = "out_dir"
RUNS_PARAMETER = "runs_dir"
LINKS_PARAMETER = "links_from"    # where the executed notebook is saved: the folder its relative links start from
RUNS_FOLDER = "training-runs"     # <run folder>/training-runs: the training runs shared by a batch run's notebooks
RUNNER_PARAMETERS = {OUT_PARAMETER: "each notebook's own folder", REPORT_PARAMETER: "the run folder",
                     RUNS_PARAMETER: f"<run folder>/{RUNS_FOLDER}",
                     LINKS_PARAMETER: "the folder the executed notebook is saved in"}
PROFILE_KEYS = {"description", "notebooks", "common", "parameters", "grid"}
POINT_KEYS = {"name", "notebooks"}   # a grid point's own keys: its folder name, the notebooks it reaches
TIMEOUT_ERROR = "CellTimeoutError"


def default_notebooks_dir() -> Path:
    return paths.REPO_ROOT / "notebooks"


def default_profiles_dir() -> Path:
    return paths.REPO_ROOT / "profiles"


# ----------------------------------------------------------------------------------------------------------------
# notebooks, profiles, grids
# ----------------------------------------------------------------------------------------------------------------
def discover_notebooks(directory) -> dict[str, Path]:
    """{two-digit key → path} of the ``NN_name.ipynb`` notebooks in ``directory``, sorted by key."""
    found: dict[str, Path] = {}
    for path in sorted(Path(directory).glob("*.ipynb")):
        match = NOTEBOOK_PATTERN.match(path.name)
        if match:
            if match.group(1) in found:
                raise ValueError(f"two notebooks share the key {match.group(1)}: {found[match.group(1)].name}, "
                                 f"{path.name}")
            found[match.group(1)] = path
    return found


def notebook_parameters(path) -> dict:
    """{name → default} of the notebook's ``parameters`` cell (papermill's inspection)."""
    import papermill
    return {name: info.get("default") for name, info in papermill.inspect_notebook(str(path)).items()}


def available_profiles(directory=None) -> list[str]:
    """Names of the profiles in ``directory`` (YAML files that are not grids: ``grid*.yaml`` are excluded)."""
    directory = Path(directory) if directory is not None else default_profiles_dir()
    return sorted(p.stem for p in directory.glob("*.yaml") if not p.stem.startswith("grid"))


def _read_yaml(path: Path) -> dict:
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({error})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
    return loaded


def _key(value) -> str:
    """Notebook keys may be written 1, "01" or "01_marginal_effect" in YAML and on the command line."""
    text = str(value).strip()
    match = re.match(r"^(\d+)", text)
    if not match:
        raise ValueError(f"not a notebook key: {value!r} (use the two-digit prefix, e.g. 01)")
    return f"{int(match.group(1)):02d}"


def load_profile(name_or_path, directory=None) -> dict:
    """A profile as {name, path, description, notebooks (keys or None = all), common, parameters {key: {...}}}.

    ``name_or_path``: a profile name in ``directory`` (default ``profiles/``) or a path to a YAML file. An unknown
    name raises ValueError listing the valid ones.
    """
    candidate = Path(str(name_or_path))
    directory = Path(directory) if directory is not None else default_profiles_dir()
    if candidate.suffix in (".yaml", ".yml") and candidate.exists():
        path = candidate
    else:
        path = directory / f"{name_or_path}.yaml"
        if not path.exists():
            valid = available_profiles(directory)
            raise ValueError(f"unknown profile {name_or_path!r}; valid profiles: {', '.join(valid) or '(none)'} "
                             f"(in {directory}), or a path to a .yaml file")
    raw = _read_yaml(path)
    unknown = set(raw) - PROFILE_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; valid: {sorted(PROFILE_KEYS)}")
    notebooks = raw.get("notebooks")
    parameters = raw.get("parameters") or {}
    common = raw.get("common") or {}
    if not isinstance(parameters, dict) or not all(isinstance(v, dict) for v in parameters.values()):
        raise ValueError(f"{path}: 'parameters' must map notebook keys to mappings of parameters")
    if not isinstance(common, dict):
        raise ValueError(f"{path}: 'common' must be a mapping of parameters")
    grid = raw.get("grid")
    if grid is not None and not isinstance(grid, dict):
        raise ValueError(f"{path}: 'grid' must map parameters to lists of values")
    return {"name": path.stem, "path": str(path), "description": raw.get("description", ""),
            "notebooks": None if notebooks is None else [_key(k) for k in notebooks],
            "common": dict(common), "parameters": {_key(k): dict(v) for k, v in parameters.items()},
            "grid": None if grid is None else {**_grid(grid, f"{path} (grid)"), "path": f"{path.name} (grid)"}}


def _grid(raw: Mapping, where: str) -> dict:
    """Validate a grid mapping: {parameter → non-empty list} (a cartesian product) or ``points:`` (a list of
    {parameter → value} mappings, each with an optional ``name`` for its folder), and optional notebooks: [keys]."""
    raw = dict(raw)
    notebooks = raw.pop("notebooks", None)
    points = raw.pop("points", None)
    if points is not None:
        if raw:
            raise ValueError(f"{where}: a grid has either points or lists of values, not both ({sorted(raw)})")
        if not isinstance(points, list) or not points or not all(isinstance(p, dict) and p for p in points):
            raise ValueError(f"{where}: grid points must be a non-empty list of parameter mappings")
        points = [{**p, "notebooks": [_key(k) for k in p["notebooks"]]} if "notebooks" in p else p for p in points]
    for name, values in raw.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"{where}: grid values must be non-empty lists, got {name}: {values!r}")
    return {"values": raw, "points": points, "notebooks": None if notebooks is None else [_key(k) for k in notebooks]}


def _grid_points(grid: Mapping | None, declared, key: str | None = None) -> list[tuple[str | None, dict]]:
    """(folder label or None, parameters) of every grid point for notebook ``key`` declaring ``declared``: the
    explicit ``points`` (their ``name`` as label; a point with its own ``notebooks`` list reaches only those), else
    the cartesian product of the values it declares."""
    if grid and grid.get("points"):
        return [(point.get("name"), {k: v for k, v in point.items() if k not in POINT_KEYS and k in declared})
                for point in grid["points"] if key is None or key in point.get("notebooks", [key])]
    return [(None, point) for point in expand_grid({k: v for k, v in (grid or {}).get("values", {}).items()
                                                    if k in declared})]


def load_grid(path) -> dict:
    """A grid file as {"values": {parameter → list}, "notebooks": keys or None}. Values must be non-empty lists."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"grid file not found: {path}")
    return {**_grid(_read_yaml(path), str(path)), "path": str(path)}


def expand_grid(values: Mapping[str, Sequence]) -> list[dict]:
    """Cartesian product of {name → list} in key order → [{name → value}, ...]; {} → [{}]."""
    keys = list(values)
    for key in keys:
        if isinstance(values[key], (str, bytes)) or not isinstance(values[key], Sequence):
            raise ValueError(f"grid values must be lists, got {key}: {values[key]!r}")
    return [dict(zip(keys, combo)) for combo in itertools.product(*(values[k] for k in keys))]


def point_label(point: Mapping) -> str:
    """A folder name for a grid point: ``epochs=2_seeds=0-1`` (characters outside [A-Za-z0-9.=-] become -)."""
    def text(value) -> str:
        if isinstance(value, (list, tuple)):
            return "-".join(text(v) for v in value)
        if isinstance(value, dict):
            return "-".join(f"{k}{text(v)}" for k, v in value.items())
        return str(value)
    parts = [f"{k}={text(v)}" for k, v in point.items()]
    return re.sub(r"[^A-Za-z0-9.=_-]", "-", "_".join(parts))[:120]


# ----------------------------------------------------------------------------------------------------------------
# planning
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class Job:
    key: str
    notebook: Path
    out_dir: Path
    parameters: dict
    point: dict = field(default_factory=dict)
    report: bool = False
    name: str | None = None          # a grid point's own name (its folder), when the grid lists points

    @property
    def label(self) -> str:
        if self.name:
            return f"{self.notebook.stem} [{self.name}]"
        return self.notebook.stem + (f" [{point_label(self.point)}]" if self.point else "")

    @property
    def title(self) -> str:
        """For people: ``02_imbalance_on_balanced_data (dataset=mnist, epochs=2)``, or the point's name."""
        def text(value) -> str:
            return value if isinstance(value, str) else json.dumps(value, default=str)
        if self.name:
            return f"{self.notebook.stem} ({self.name})"
        return self.notebook.stem + (f" ({', '.join(f'{k}={text(v)}' for k, v in self.point.items())})"
                                     if self.point else "")


def _runner_owned(names, where: str) -> None:
    owned = sorted(set(names) & set(RUNNER_PARAMETERS))
    if owned:
        raise ValueError(f"{where} sets {owned}, which the runner sets itself ("
                         + ", ".join(f"{k}: {v}" for k, v in RUNNER_PARAMETERS.items()) + ")")


def _profile_parameters(profile: Mapping, key: str, notebook: Path, declared: Mapping) -> dict:
    """The profile's parameters for one notebook: its ``common`` values that the notebook declares, overridden by
    the notebook's own section; a key in that section that the notebook does not declare is an error."""
    own = dict(profile.get("parameters", {}).get(key, {}))
    _runner_owned(own, f"profile {profile.get('name')!r} ({notebook.stem})")
    undeclared = set(own) - set(declared)
    if undeclared:
        raise ValueError(f"profile {profile.get('name')!r} sets {sorted(undeclared)} for {notebook.name}, "
                         f"which declares only {sorted(declared)}")
    return {**{k: v for k, v in profile.get("common", {}).items() if k in declared}, **own}


def plan_jobs(profile: Mapping, run_dir, *, notebooks_dir=None, grid: Mapping | None = None,
              only: Sequence[str] | None = None, report: bool = True) -> list[Job]:
    """The jobs of a run, report notebooks last. Raises ValueError, with the valid names, for an unknown notebook
    key, a profile parameter (``common`` or a notebook's section) or grid parameter that no notebook it reaches
    declares, grid ``notebooks`` that the profile does not run, a parameter the runner sets itself, and two grid
    points whose folder names collide. Names are checked against every notebook the profile runs, whatever
    ``only`` selects, so that a profile is valid or not independently of ``--only``."""
    notebooks = discover_notebooks(notebooks_dir or default_notebooks_dir())
    if not notebooks:
        raise ValueError(f"no NN_name.ipynb notebooks in {notebooks_dir or default_notebooks_dir()}")
    selected = list(profile.get("notebooks") or list(notebooks))   # what the profile runs, before --only
    wanted = selected
    if only:
        only = [_key(k) for k in only]
        wanted = [k for k in wanted if k in only] + [k for k in only if k not in wanted]
    unknown = [k for k in selected + wanted + list(profile.get("parameters", {})) if k not in notebooks]
    if unknown:
        raise ValueError(f"unknown notebook keys {sorted(set(unknown))}; available: {', '.join(notebooks)}")
    run_dir = Path(run_dir).resolve()   # notebooks run with their own folder as cwd: relative paths would move
    declared = {k: notebook_parameters(path) for k, path in notebooks.items()}
    reports = [k for k in notebooks if REPORT_PARAMETER in declared[k]]
    regular = [k for k in wanted if k not in reports]
    scope = [k for k in notebooks if k in selected or k in wanted or k in reports]
    for key in profile.get("parameters", {}):           # every section, also of notebooks --only leaves out
        _profile_parameters(profile, key, notebooks[key], declared[key])
    common = dict(profile.get("common") or {})
    _runner_owned(common, f"profile {profile.get('name')!r} (common)")
    valid = sorted({name for k in scope for name in declared[k]} - set(RUNNER_PARAMETERS))
    undeclared = sorted(name for name in common if not any(name in declared[k] for k in scope))
    if undeclared:
        raise ValueError(f"profile {profile.get('name')!r}: common sets {undeclared}, which none of its notebooks "
                         f"({', '.join(notebooks[k].stem for k in scope)}) declares; valid: {valid}")
    jobs: list[Job] = []
    grid_values = {k: None for point in (grid or {}).get("points") or [] for k in point if k not in POINT_KEYS} or \
        (grid or {}).get("values", {})
    grid_notebooks = (grid or {}).get("notebooks")
    where = f"grid {(grid or {}).get('path') or ''}".strip()
    unknown = [k for k in grid_notebooks or [] if k not in notebooks]
    unknown += [k for point in (grid or {}).get("points") or [] for k in point.get("notebooks", [])
                if k not in (grid_notebooks or notebooks)]
    if unknown:
        raise ValueError(f"{where}: unknown notebook keys {unknown}; available: {', '.join(notebooks)}")
    scope_regular = [k for k in scope if k not in reports]
    outside = [k for k in grid_notebooks or [] if k not in scope_regular]
    if outside:
        raise ValueError(f"{where}: notebooks {outside} are not varied by this run (report notebooks run once; the "
                         f"profile {profile.get('name')!r} runs {', '.join(scope_regular) or 'none'} besides)")
    _runner_owned(grid_values, where)
    targets = [k for k in scope_regular if grid_notebooks is None or k in grid_notebooks]
    undeclared = [name for name in grid_values if not any(name in declared[k] for k in targets)]
    if undeclared:
        valid = sorted({name for k in targets for name in declared[k]} - set(RUNNER_PARAMETERS))
        raise ValueError(f"grid parameters {undeclared} are declared by none of the notebooks they would vary "
                         f"({', '.join(notebooks[k].stem for k in targets) or 'none'}); valid: {valid}")
    for key in regular:
        params = declared[key]
        base = _profile_parameters(profile, key, notebooks[key], params)
        varied = grid_notebooks is None or key in grid_notebooks
        labels: dict[str, dict] = {}
        for name, point in _grid_points(grid, params, key) if varied else [(None, {})]:
            folder = run_dir / notebooks[key].stem
            if point or name:
                label = name or point_label(point)
                if label in labels:
                    raise ValueError(f"{where}: the points {labels[label]} and {point} of {notebooks[key].stem} "
                                     f"would share the folder {label!r} (folder names keep [A-Za-z0-9.=_-] and "
                                     "120 characters); make the values differ there, or drop the repeated value")
                labels[label] = point
                folder = folder / label
            parameters = {**base, **point}
            _runner_parameters(parameters, params, run_dir, folder)
            jobs.append(Job(key, notebooks[key], folder, parameters, point, name=name))
    for key in reports:
        if not report and key not in (only or []):
            continue
        params = declared[key]
        folder = run_dir / notebooks[key].stem
        parameters = _profile_parameters(profile, key, notebooks[key], params)
        _runner_parameters(parameters, params, run_dir, folder)
        jobs.append(Job(key, notebooks[key], folder, parameters, report=True))
    return jobs


def _runner_parameters(parameters: dict, declared: Mapping, run_dir: Path, folder: Path) -> None:
    """The runner's own parameters, for a notebook that declares them: out_dir, run_dir (report notebooks),
    runs_dir (the batch run's shared training runs), links_from (the folder the executed notebook is saved in)."""
    if REPORT_PARAMETER in declared:
        parameters[REPORT_PARAMETER] = str(run_dir)
    if OUT_PARAMETER in declared:
        parameters[OUT_PARAMETER] = str(folder)
    if RUNS_PARAMETER in declared:
        parameters[RUNS_PARAMETER] = str(run_dir / RUNS_FOLDER)
    if LINKS_PARAMETER in declared:
        parameters[LINKS_PARAMETER] = str(folder)


# ----------------------------------------------------------------------------------------------------------------
# execution
# ----------------------------------------------------------------------------------------------------------------
def kernel_options(timeout: float | None) -> dict:
    """nbclient settings for papermill's kernels. The kernel manager provisions CurveZMQ keys where the kernel
    declares support (ipykernel ≥ 7), so the kernel no longer warns "Kernel is running over TCP without
    encryption" on stderr. With a cell ``timeout`` the kernel is interrupted when a cell runs over it, so that the
    cell ends in an error (KeyboardInterrupt) before the kernel is shut down, instead of a kernel that is shut down
    while still running and prints a ZMQError traceback."""
    import zmq
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    options: dict = {}
    if zmq.has("curve") and KernelManager.class_traits().get("transport_encryption") is not None:
        options["config"] = Config({"KernelManager": {"transport_encryption": "auto"}})
    if timeout is not None:
        options.update(interrupt_on_timeout=True, error_on_timeout={
            "ename": TIMEOUT_ERROR, "evalue": f"the cell ran longer than {timeout:g} s", "traceback": []})
    return options


def _quiet_papermill_log() -> None:
    """nbclient logs a cell timeout through papermill's logger ("Timeout waiting for execute reply", "Interrupting
    kernel"); the runner reports it on one line itself."""
    import logging

    class Timeouts(logging.Filter):
        def filter(self, record):
            return not str(record.msg).startswith(("Timeout waiting for execute reply", "Interrupting kernel"))

    log = logging.getLogger("papermill")
    if not any(isinstance(f, Timeouts) for f in log.filters):
        log.addFilter(Timeouts())


def _timed_out(job: Job, timeout: float, cell_index, exec_count, source: str) -> dict:
    where = f"cell {exec_count} (index {cell_index})" if cell_index is not None else "a cell"
    text = f": {source}" if source else ""
    return {"status": "failed", "timed_out": True, "ename": TIMEOUT_ERROR, "evalue": f"longer than {timeout:g} s",
            "cell_index": cell_index, "exec_count": exec_count, "cell_source": source,
            "error": f"{job.notebook.stem}: {where} timed out after {timeout:g} s (run --timeout){text}"}


def execute_job(job: Job, *, kernel_name: str = "python3", cwd=None, timeout: float | None = None,
                progress: bool = True, bar_position: int | None = None) -> dict:
    """Run one notebook with papermill into ``job.out_dir``; returns its summary entry (never raises for a
    failing notebook: the failing cell and the error are recorded). ``progress``: a bar over its cells (stderr).
    A cell that runs longer than ``timeout`` seconds is interrupted and recorded as ``timed_out`` with a one-line
    error naming the notebook and the cell."""
    import papermill
    from nbclient.exceptions import CellTimeoutError
    from papermill.exceptions import PapermillExecutionError

    job.out_dir.mkdir(parents=True, exist_ok=True)
    output = job.out_dir / job.notebook.name
    entry = {"notebook": job.notebook.stem, "key": job.key, "point": point_label(job.point) if job.point else "",
             "parameters": job.parameters, "out_dir": str(job.out_dir), "output_notebook": str(output),
             "status": "ok", "error": None}
    started = time.perf_counter()
    try:
        papermill.execute_notebook(str(job.notebook), str(output), parameters=job.parameters,
                                   kernel_name=kernel_name, cwd=str(cwd or job.notebook.parent),
                                   progress_bar=({"desc": job.notebook.stem, "leave": False, "position": bar_position}
                                                 if progress else False),
                                   log_output=False, execution_timeout=timeout, **kernel_options(timeout))
    except PapermillExecutionError as error:
        source = (error.source or "").strip().splitlines()
        first = source[0] if source else ""
        if timeout is not None and error.ename in (TIMEOUT_ERROR, "KeyboardInterrupt"):
            entry.update(_timed_out(job, timeout, error.cell_index, error.exec_count, first))
        else:
            entry.update(status="failed", cell_index=error.cell_index, exec_count=error.exec_count,
                         ename=error.ename, evalue=error.evalue, cell_source=first,
                         error=f"cell {error.exec_count} (index {error.cell_index}): {error.ename}: {error.evalue}")
    except CellTimeoutError as error:   # the kernel did not answer the interrupt in time
        entry.update(_timed_out(job, timeout or 0, *_running_cell(output)), evalue=_one_line(error))
    except Exception as error:  # kernel death, missing kernels: still report, keep going
        entry.update(status="failed", ename=type(error).__name__, evalue=str(error),
                     error=f"{type(error).__name__}: {_one_line(error)}",
                     traceback=traceback.format_exc(limit=3))
    entry["duration_s"] = round(time.perf_counter() - started, 1)
    return entry


def _one_line(error: BaseException) -> str:
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__


def _running_cell(output: Path) -> tuple:
    """(index, execution count, first source line) of the last cell papermill started in a partly executed
    notebook; (None, None, "") when it cannot tell."""
    try:
        import nbformat
        cells = nbformat.read(output, as_version=4).cells
    except Exception:   # not written (yet), or unreadable: the cell stays unnamed
        return None, None, ""
    started = [i for i, cell in enumerate(cells) if cell.get("metadata", {}).get("papermill", {}).get("start_time")]
    if not started:
        return None, None, ""
    cell = cells[started[-1]]
    return started[-1], cell.get("execution_count"), (cell.source.strip().splitlines() or [""])[0]


def _markdown_summary(summary: Mapping) -> str:
    lines = [f"# Run `{Path(summary['run_dir']).name}`", "",
             f"- profile: `{summary['profile']}` ({summary.get('description') or 'no description'})",
             f"- grid: `{summary.get('grid') or 'none'}`",
             f"- started {summary['started']}, finished {summary.get('finished') or '(running)'}, "
             f"{summary.get('duration_s', 0) / 60:.1f} min",
             f"- status: **{summary.get('status', 'running')}** "
             f"({sum(e['status'] == 'ok' for e in summary['entries'])} of {len(summary['entries'])} notebooks ok)",
             "", "| notebook | grid point | status | seconds | parameters | error |", "|---|---|---|---|---|---|"]
    for entry in summary["entries"]:
        params = ", ".join(f"{k}={json.dumps(v)}" for k, v in entry["parameters"].items()
                           if k not in (OUT_PARAMETER, REPORT_PARAMETER))
        error = (entry.get("error") or "").replace("|", "\\|").replace("\n", " ")[:300]
        lines.append(f"| {entry['notebook']} | {entry['point']} | {entry['status']} | {entry['duration_s']} | "
                     f"{params.replace('|', '/')} | {error} |")
    return "\n".join(lines) + "\n"


def write_summary(run_dir, summary: Mapping) -> tuple[Path, Path]:
    """``summary.json`` and ``summary.md`` in ``run_dir``."""
    run_dir = Path(run_dir)
    json_path, md_path = run_dir / "summary.json", run_dir / "summary.md"
    json_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    md_path.write_text(_markdown_summary(summary))
    return json_path, md_path


def format_duration(seconds: float) -> str:
    """``42 s``, ``12 min 3 s``, ``2 h 5 min``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def new_run_dir(profile_name: str, out=None, *, force: bool = False) -> Path:
    """``out`` if given (new or empty unless ``force``: :func:`semscale_lib.paths.claim_output_dir`), else
    ``<runs_root>/<profile>-<YYYYmmdd-HHMMSS>`` (suffixed if it exists)."""
    if out is not None:
        return paths.claim_output_dir(out, force=force, what="run folder")
    base = paths.runs_root() / f"{profile_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def kernel_threads(jobs: int, cpus: int | None = None) -> int:
    """CPU threads per kernel when ``jobs`` notebooks run side by side: the cores shared out, at least 1. Two
    kernels that each spin up every core's worth of OpenMP threads slow each other down many times over."""
    cpus = cpus or os.cpu_count() or 1
    return max(1, cpus // max(1, jobs))


@contextlib.contextmanager
def _threads_per_kernel(workers: int, jobs: Sequence[Job], stream):
    """With ``workers`` > 1: OMP/MKL_NUM_THREADS for the kernels (they inherit the environment; a notebook's own
    ``threads`` parameter still wins), unless already set; and a warning when a notebook's ``threads`` × workers
    exceeds the cores. Restores the environment after."""
    if workers <= 1:
        yield
        return
    per_kernel = kernel_threads(workers)
    cpus = os.cpu_count() or 1
    crowded = sorted({j.notebook.stem for j in jobs
                      if isinstance(j.parameters.get("threads"), int) and j.parameters["threads"] * workers > cpus})
    if crowded:
        print(f"warning: the threads of {', '.join(crowded)} × {workers} notebooks at once exceed the {cpus} cores; "
              f"set threads: {per_kernel} (or fewer --jobs)", file=stream, flush=True)
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(per_kernel))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run(profile, *, grid=None, only: Sequence[str] | None = None, out=None, notebooks_dir=None,
        profiles_dir=None, report: bool = True, kernel_name: str = "python3", timeout: float | None = None,
        stream=None, force: bool = False, progress: bool = True, jobs: int = 1) -> tuple[int, Path]:
    """Execute a profile (name, path or loaded dict); returns (exit code: 0 all ok / 1 any failed, run folder).

    ``jobs``: how many notebooks run side by side (report notebooks still run last, alone); see
    :func:`kernel_threads` for the CPU threads each kernel then gets.

    The jobs are planned (and every name checked) before the run folder is made. Prints ``[i/n] notebook (grid
    point)`` before each notebook, a bar over its cells (stderr, unless not ``progress``), its status and time,
    and last ``<n> notebooks, <k> failed, <time>; report: <path>``.
    """
    stream = stream or sys.stdout
    _quiet_papermill_log()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs (notebooks side by side) must be a whole number ≥ 1, got {jobs!r}")
    profile = profile if isinstance(profile, Mapping) else load_profile(profile, profiles_dir)
    grid = grid if (grid is None or isinstance(grid, Mapping)) else load_grid(grid)
    grid = grid if grid is not None else profile.get("grid")   # a --grid file replaces the profile's own grid
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else default_notebooks_dir()
    # every name is checked before the run folder is made: a typo leaves nothing behind
    plan_jobs(profile, Path(out or "."), notebooks_dir=notebooks_dir, grid=grid, only=only, report=report)
    run_dir = new_run_dir(profile["name"], out, force=force).resolve()
    workers, jobs = jobs, plan_jobs(profile, run_dir, notebooks_dir=notebooks_dir, grid=grid, only=only,
                                    report=report)
    workers = max(1, min(workers, sum(not j.report for j in jobs)))
    summary = {"profile": profile["name"], "profile_file": profile.get("path"),
               "description": profile.get("description", ""), "grid": (grid or {}).get("path"),
               "grid_values": (grid or {}).get("points") or (grid or {}).get("values"), "run_dir": str(run_dir),
               "notebooks_dir": str(notebooks_dir), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
               "entries": []}
    print(f"run folder: {run_dir} ({len(jobs)} notebook runs, profile {profile['name']}"
          + (f", {workers} side by side" if workers > 1 else "") + ")", file=stream, flush=True)
    started = time.perf_counter()
    write_summary(run_dir, summary)
    entries: dict[int, dict] = {}
    lock = threading.Lock()

    def finished(number: int, job: Job, entry: dict) -> None:
        with lock:
            entries[number] = entry
            summary["entries"] = [entries[n] for n in sorted(entries)]   # in plan order, whatever ended first
            summary["duration_s"] = round(time.perf_counter() - started, 1)
            write_summary(run_dir, summary)  # after each notebook, so the report notebook sees what ran
            name = f"{job.title}: " if workers > 1 else ""
            print(f"    {name}{entry['status']} in {format_duration(entry['duration_s'])}"
                  + (f": {entry['error']}" if entry["error"] else ""), file=stream, flush=True)

    numbered = list(enumerate(jobs, 1))
    regular = [(n, j) for n, j in numbered if not j.report]
    with _threads_per_kernel(workers, [j for _, j in regular], stream):
        if workers == 1:
            for number, job in regular:
                print(f"[{number}/{len(jobs)}] {job.title}", file=stream, flush=True)
                finished(number, job, execute_job(job, kernel_name=kernel_name, cwd=notebooks_dir,
                                                  timeout=timeout, progress=progress))
        else:
            slots = queue.Queue()
            for slot in range(workers):
                slots.put(slot)

            def one(number: int, job: Job) -> None:
                slot = slots.get()
                try:
                    with lock:
                        print(f"[{number}/{len(jobs)}] {job.title} (started)", file=stream, flush=True)
                    entry = execute_job(job, kernel_name=kernel_name, cwd=notebooks_dir, timeout=timeout,
                                        progress=progress, bar_position=slot)
                finally:
                    slots.put(slot)
                finished(number, job, entry)

            with ThreadPoolExecutor(max_workers=workers) as pool:
                for future in [pool.submit(one, n, j) for n, j in regular]:
                    future.result()
    for number, job in numbered:                     # report notebooks last, once every other one has ended
        if job.report:
            print(f"[{number}/{len(jobs)}] {job.title}", file=stream, flush=True)
            finished(number, job, execute_job(job, kernel_name=kernel_name, cwd=notebooks_dir, timeout=timeout,
                                              progress=progress))
    failed = [e for e in summary["entries"] if e["status"] != "ok"]
    summary.update(finished=time.strftime("%Y-%m-%d %H:%M:%S"), duration_s=round(time.perf_counter() - started, 1),
                   status="failed" if failed else "ok", failures=[f"{e['notebook']} {e['point']}: {e['error']}"
                                                                  for e in failed])
    _, md_path = write_summary(run_dir, summary)
    print(f"summary: {md_path}" + (f" ({len(failed)} of {len(jobs)} failed)" if failed else ""), file=stream)
    report_path = run_dir / "report.md"
    print(f"{len(jobs)} notebook{'s' if len(jobs) != 1 else ''}, {len(failed)} failed, "
          f"{format_duration(summary['duration_s'])}; "
          + (f"report: {report_path}" if report_path.exists() else f"report: none written (see {md_path})"),
          file=stream, flush=True)
    return (1 if failed else 0), run_dir


# ----------------------------------------------------------------------------------------------------------------
# committed notebooks
# ----------------------------------------------------------------------------------------------------------------
VOLATILE_CELL_METADATA = ("execution", "papermill", "collapsed", "scrolled")


def clean_notebook(nb):
    """Strip volatile metadata from an executed notebook (in place; returns it): papermill's notebook and cell
    metadata, per-cell execution timings, widget state, jupytext's filters (JupyterLab copies them from
    ``notebooks/jupytext.toml``); the kernelspec becomes the generic ``python3``. ``language_info`` stays as the
    kernel reported it: JupyterLab writes the kernel's own on opening a notebook, and marks the notebook modified
    when it differs. Outputs and execution counts stay (nbval compares outputs)."""
    for key in ("papermill", "widgets", "jupytext"):
        nb.metadata.pop(key, None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    for cell in nb.cells:
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if "tags" in cell.metadata and not cell.metadata["tags"]:
            del cell.metadata["tags"]
    return nb


def volatile_metadata(nb) -> list[str]:
    """What :func:`clean_notebook` would remove (empty list for a clean notebook)."""
    found = [f"metadata.{k}" for k in ("papermill", "widgets", "jupytext") if k in nb.metadata]
    if nb.metadata.get("kernelspec", {}).get("name") != "python3":
        found.append("metadata.kernelspec (not python3)")
    for index, cell in enumerate(nb.cells):
        found += [f"cells[{index}].metadata.{k}" for k in VOLATILE_CELL_METADATA if k in cell.metadata]
    return found


# ----------------------------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------------------------
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


__all__ = ["Job", "available_profiles", "clean_notebook", "discover_notebooks", "execute_job", "expand_grid",
           "format_duration", "kernel_threads", "load_grid", "load_profile", "main_run", "new_run_dir", "notebook_parameters",
           "plan_jobs", "point_label", "run", "volatile_metadata", "write_summary"]
