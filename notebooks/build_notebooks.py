"""Build the notebooks from their readable sources in ``notebooks/_source/*.py`` (percent format).

    .venv/bin/python notebooks/build_notebooks.py             # write the .ipynb files (no outputs)
    .venv/bin/python notebooks/build_notebooks.py --execute   # ... and execute them in place (default parameters)
    .venv/bin/python notebooks/build_notebooks.py --check     # exit 1 if a committed notebook differs from its
                                                              # source or carries volatile metadata
    .venv/bin/python notebooks/build_notebooks.py --execute 01  # only some notebooks (key prefixes)

Source format: cells start at lines ``# %%`` (code) or ``# %% [markdown]`` (markdown, every line prefixed by
``# ``); ``tags=["parameters"]`` after the marker sets cell tags. The sources are what reviewers read and diff;
the .ipynb files (with the outputs of their default run, cleaned of volatile metadata) are what nbval checks.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "_source"
MARKER = re.compile(r"^# %%(?P<rest>.*)$")


def parse_source(text: str) -> list[dict]:
    """Percent-format text → [{"cell_type", "source", "tags"}]. Text before the first marker is ignored."""
    cells, current = [], None
    for line in text.splitlines():
        match = MARKER.match(line)
        if match:
            rest = match.group("rest").strip()
            kind = "markdown" if rest.startswith("[markdown]") else "code"
            tags_match = re.search(r"tags=(\[.*\])", rest)
            current = {"cell_type": kind, "lines": [], "tags": json.loads(tags_match.group(1)) if tags_match else []}
            cells.append(current)
        elif current is not None:
            if current["cell_type"] == "markdown":
                line = line[2:] if line.startswith("# ") else line[1:] if line.startswith("#") else line
            current["lines"].append(line)
    out = []
    for cell in cells:
        lines = cell.pop("lines")
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        out.append({**cell, "source": "\n".join(lines)})
    return out


def build(source_path: Path):
    """A fresh nbformat v4 notebook (python3 kernelspec, deterministic cell ids) from one source file."""
    nb = nbformat.v4.new_notebook()
    for index, cell in enumerate(parse_source(source_path.read_text())):
        make = nbformat.v4.new_markdown_cell if cell["cell_type"] == "markdown" else nbformat.v4.new_code_cell
        new = make(cell["source"])
        new["id"] = f"c{index:02d}"
        if cell["tags"]:
            new.metadata["tags"] = cell["tags"]
        nb.cells.append(new)
    sys.path.insert(0, str(HERE.parent))
    from semscale_lib.runner import clean_notebook
    return clean_notebook(nb)


def execute(nb, cwd: Path):
    """Execute in place with nbclient (generic python3 kernel, working directory ``cwd``, no timing metadata)."""
    from nbclient import NotebookClient
    NotebookClient(nb, kernel_name="python3", timeout=None, record_timing=False,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    from semscale_lib.runner import clean_notebook
    return clean_notebook(nb)


def differences(committed, built) -> list[str]:
    """How a committed notebook departs from its source (cell types, sources, tags) or from cleanliness."""
    from semscale_lib.runner import volatile_metadata
    problems = volatile_metadata(committed)
    if len(committed.cells) != len(built.cells):
        problems.append(f"{len(committed.cells)} cells, the source has {len(built.cells)}")
    for index, (a, b) in enumerate(zip(committed.cells, built.cells)):
        if (a.cell_type, a.source, a.metadata.get("tags", [])) != (b.cell_type, b.source, b.metadata.get("tags", [])):
            problems.append(f"cell {index} differs from the source")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("keys", nargs="*", help="notebook key prefixes (e.g. 00 03); default: all")
    parser.add_argument("--execute", action="store_true", help="execute with default parameters, keep outputs")
    parser.add_argument("--check", action="store_true", help="only check the committed notebooks")
    args = parser.parse_args(argv)
    sources = sorted(p for p in SOURCES.glob("*.py") if not args.keys or p.stem[:2] in args.keys)
    status = 0
    for source in sources:
        target = HERE / f"{source.stem}.ipynb"
        built = build(source)
        if args.check:
            if not target.exists():
                print(f"{target.name}: missing")
                status = 1
                continue
            problems = differences(nbformat.read(target, as_version=4), built)
            print(f"{target.name}: " + ("ok" if not problems else "; ".join(problems)))
            status |= bool(problems)
            continue
        if args.execute:
            started = time.perf_counter()
            built = execute(built, HERE)
            print(f"{target.name}: executed in {time.perf_counter() - started:.0f} s", flush=True)
        nbformat.write(built, target)
        print(f"wrote {target.relative_to(HERE.parent)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
