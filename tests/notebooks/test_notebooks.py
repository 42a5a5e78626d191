"""The notebooks' structure. Their execution is tested twice elsewhere: with their defaults under nbval
(``make test``), and with the paper profile's parameters through the batch runner in ``test_paper_profile.py``,
which also checks that the parameters reach the code."""
from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from semscale_lib import runner

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
KEYS = ["00", "01", "02", "03", "04", "05", "06"]
TRAINING = ["01", "02", "03", "04"]


def _notebooks() -> dict[str, Path]:
    return runner.discover_notebooks(NOTEBOOKS)


def _parameters_cell(nb):
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell must be tagged 'parameters'"
    return cells[0]


# ---------------------------------------------------------------------------------------------------- structure
def test_all_notebooks_exist():
    assert list(_notebooks()) == KEYS


@pytest.mark.parametrize("key", KEYS)
def test_notebook_structure(key):
    nb = nbformat.read(_notebooks()[key], as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "from semscale_lib" in code[0].source and "require_versions" in code[0].source
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    params = _parameters_cell(nb)
    assert params is code[1], "the parameters cell comes right after the imports"
    tree = ast.parse(params.source)
    values = {}
    for statement in tree.body:
        # typed assignments of literals only: papermill shows the types (--help-notebook) and does not recompute
        # derived values
        assert isinstance(statement, ast.AnnAssign), f"only typed assignments: {ast.dump(statement)}"
        values[statement.target.id] = ast.literal_eval(statement.value)
    names = list(values)
    if "threads" in values:   # one thread: the same numbers on one CPU; nbval and --jobs run notebooks side by side
        assert values["threads"] == 1
    # every parameter's help is the comment on its own (last) line, so papermill attaches it to the right name
    lines = params.source.splitlines()
    for statement in tree.body:
        assert "#" in lines[statement.end_lineno - 1], f"{statement.target.id}: no help comment on its last line"
    # the first code cell after the parameters checks them before any work
    after = code[2].source
    assert "check_parameters(globals())" in after or "check_parameters" in after, "parameters are not checked"
    assert "out_dir" in names
    if key in TRAINING:
        assert {"dataset", "model", "seeds", "device", "threads"} <= set(names)
        assert "epochs" in names or "min_epochs" in names
    # papermill must be able to read every parameter (a comment with '=' would hide it from the runner)
    assert set(runner.notebook_parameters(_notebooks()[key])) == set(names)


def _minor(version: str) -> str:
    """'3.11.7' -> '3.11'."""
    return ".".join(version.split(".")[:2])


@pytest.mark.slow
def test_a_notebook_opened_with_the_projects_kernel_is_not_marked_modified():
    """JupyterLab writes the running kernel's kernelspec and language_info into a notebook it opens and marks the
    notebook modified when they differ from what was saved: every committed notebook holds what this project's
    python3 kernel reports. The patch level of Python is the executing machine's (3.11.x from environment.yml): it is
    compared to the minor version only, so that a user's 3.11.9 does not fail the test."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")
    try:
        reply = client.kernel_info(reply=True, timeout=60)["content"]
        spec = manager.kernel_spec
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    for key, path in _notebooks().items():
        metadata = nbformat.read(path, as_version=4).metadata
        saved, running = dict(metadata["language_info"]), dict(reply["language_info"])
        assert _minor(saved.pop("version")) == _minor(running.pop("version")), key
        assert saved == running, key
        assert metadata["kernelspec"] == {"display_name": spec.display_name, "language": spec.language,
                                          "name": "python3"}, key
