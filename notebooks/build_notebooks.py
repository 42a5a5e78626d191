"""Execute and check the notebooks paired by jupytext with their percent-format sources in ``_source/``.

Pairing, conversion and syncing are jupytext's (``notebooks/jupytext.toml``); after editing a source::

    jupytext --sync notebooks/_source/*.py                       # inputs into the .ipynb, outputs kept
    .venv/bin/python notebooks/build_notebooks.py --execute 01   # re-run some notebooks in place (default parameters)
    .venv/bin/python notebooks/build_notebooks.py --check        # exit 1 if a pair disagrees or a notebook is unclean
    .venv/bin/python notebooks/build_notebooks.py --clean        # strip volatile metadata (e.g. after saving in Lab)

nbval reads its directives from cell tags (``nbval-check-output``, ``nbval-ignore-output``, ``nbval-skip``),
written in a source as ``# %% tags=["nbval-check-output"]``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = "_source"   # the folder named by `formats` in jupytext.toml

sys.path.insert(0, str(HERE.parent))
from semscale_lib.runner import clean_notebook, volatile_metadata  # noqa: E402


def pairs(folder=HERE, keys=()) -> list[tuple[Path, Path]]:
    """(source, notebook) for each ``_source/*.py`` in ``folder``, or only those whose stem starts with a key."""
    sources = sorted((Path(folder) / SOURCES).glob("*.py"))
    return [(s, s.parent.parent / f"{s.stem}.ipynb") for s in sources if not keys or s.stem[:2] in keys]


def _cells(nb) -> list[tuple]:
    return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]


def _first_line_difference(ours: str, theirs: str) -> str:
    ours, theirs = ours.splitlines() + [""], theirs.splitlines() + [""]
    for number, (a, b) in enumerate(zip(ours, theirs), 1):
        if a != b:
            return f" (line {number}: {a!r} in the source, {b!r} in the notebook)"
    return ""


def pair_differences(source: Path, notebook: Path) -> list[str]:
    """How a notebook's cells depart from its source's (cell type, source, tags): the first differing cell only."""
    if not notebook.exists():
        return ["missing"]
    ours, theirs = _cells(jupytext.read(source, fmt="py:percent")), _cells(nbformat.read(notebook, as_version=4))
    for index, (a, b) in enumerate(zip(ours, theirs)):
        if a != b:
            what = [name for name, x, y in zip(("cell type", "source", "tags"), a, b) if x != y]
            detail = ""
            if what == ["source"]:
                detail = _first_line_difference(a[1], b[1])
            elif what == ["tags"]:
                detail = f" ({a[2]} in the source, {b[2]} in the notebook)"
            return [f"cell {index} ({a[0]}) differs from {SOURCES}/{source.name} in its {', '.join(what)}{detail}"]
    if len(ours) != len(theirs):
        return [f"{len(theirs)} cells, {SOURCES}/{source.name} has {len(ours)}"]
    return []


def check(folder=HERE) -> list[str]:
    """One line per notebook in ``folder`` that disagrees with its source or carries volatile metadata."""
    problems = []
    for source, notebook in pairs(folder):
        found = pair_differences(source, notebook)
        if notebook.exists():
            found += volatile_metadata(nbformat.read(notebook, as_version=4))
        if found:
            problems.append(f"{notebook.name}: {'; '.join(found)}")
    unpaired = {p.name for p in Path(folder).glob("[0-9]*.ipynb")} - {n.name for _, n in pairs(folder)}
    problems += [f"{name}: no source in {SOURCES}/" for name in sorted(unpaired)]
    return problems


def execute(source: Path, notebook: Path) -> None:
    """Execute a synced notebook in place (nbclient, python3 kernel, cwd = its folder), then strip volatile
    metadata; the source's timestamp is refreshed so that jupytext does not take it for outdated."""
    from nbclient import NotebookClient
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=None, record_timing=False,
                   resources={"metadata": {"path": str(notebook.parent)}}).execute()
    nbformat.write(clean_notebook(nb), notebook)
    os.utime(source)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("keys", nargs="*", help="notebook key prefixes (e.g. 00 03); default: all")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--execute", action="store_true", help="execute with default parameters, keep outputs")
    action.add_argument("--check", action="store_true", help="exit 1 if a pair disagrees or a notebook is unclean")
    action.add_argument("--clean", action="store_true", help="strip volatile metadata, keep everything else")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        print("\n".join(problems) if problems else f"{len(pairs())} notebooks match their sources and are clean")
        if problems:
            print(f"to fix: jupytext --sync notebooks/{SOURCES}/*.py (out of sync), "
                  "python notebooks/build_notebooks.py --clean (volatile metadata)")
        return int(bool(problems))
    for source, notebook in pairs(keys=args.keys):
        if args.clean:
            nb = nbformat.read(notebook, as_version=4)
            if volatile_metadata(nb):
                nbformat.write(clean_notebook(nb), notebook)
                os.utime(source)
                print(f"cleaned {notebook.name}")
            continue
        if pair_differences(source, notebook):
            print(f"{notebook.name}: out of sync with its source; run jupytext --sync first", file=sys.stderr)
            return 1
        started = time.perf_counter()
        execute(source, notebook)
        print(f"{notebook.name}: executed in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
