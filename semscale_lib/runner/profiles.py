"""Notebooks, profiles and parameter grids: finding them, reading them, checking them."""
from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path
from typing import Mapping, Sequence

import yaml

from ..settings import REPO_ROOT


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
    return REPO_ROOT / "notebooks"


def default_profiles_dir() -> Path:
    return REPO_ROOT / "profiles"


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


def notebook_defaults(path, *, strict: bool = False) -> dict:
    """{name → default value} of the notebook's ``parameters`` cell: the source text papermill reports, evaluated as
    a Python literal; a default that is not one stays its text, or with ``strict`` is a ValueError naming it."""
    defaults = {}
    for name, text in notebook_parameters(path).items():
        try:
            defaults[name] = ast.literal_eval(text) if isinstance(text, str) else text
        except (ValueError, SyntaxError):
            if strict:
                raise ValueError(f"{Path(path).name}: the default of {name!r} ({text}) is not a Python literal"
                                 ) from None
            defaults[name] = text
    return defaults


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
