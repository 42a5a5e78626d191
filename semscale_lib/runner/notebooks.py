"""Committed notebooks: the volatile metadata an executed notebook carries, and how to strip it."""
from __future__ import annotations


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
