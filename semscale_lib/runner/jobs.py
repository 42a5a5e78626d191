"""Planning a batch run: the jobs (one notebook at one grid point each) and their parameters."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence
from .profiles import (LINKS_PARAMETER, OUT_PARAMETER, POINT_KEYS, REPORT_PARAMETER, RUNNER_PARAMETERS, RUNS_FOLDER,
                       RUNS_PARAMETER, _grid_points, _key, default_notebooks_dir, discover_notebooks, notebook_defaults,
                       point_label)


@dataclass
class Job:
    key: str
    notebook: Path
    out_dir: Path
    parameters: dict
    point: dict = field(default_factory=dict)
    report: bool = False
    name: str | None = None          # a grid point's own name (its folder), when the grid lists points
    defaults: dict = field(default_factory=dict)   # the notebook's declared parameters and their defaults

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
    declared = {k: notebook_defaults(path) for k, path in notebooks.items()}
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
            jobs.append(Job(key, notebooks[key], folder, parameters, point, name=name, defaults=declared[key]))
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
