"""The notebooks and their jupytext sources (_source/*.py) agree; the check catches a pair that does not."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NBVAL_TAGS = {"nbval-check-output", "nbval-ignore-output", "nbval-skip"}


@pytest.fixture(scope="module")
def builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOKS / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_pairs_are_in_sync_clean_and_executed(builder):
    assert builder.check(NOTEBOOKS) == []
    pairs = builder.pairs(NOTEBOOKS)
    assert len(pairs) == 7
    for _, notebook in pairs:
        code = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
        assert all(c.execution_count is not None for c in code), f"{notebook.name} is not executed"
        # nbval reads tags; a leftover comment directive would be visible to readers and ignored under tags
        assert not any("NBVAL_" in c.source for c in code), notebook.name
        assert any(NBVAL_TAGS & set(c.metadata.get("tags", [])) for c in code), notebook.name


def _copy_pair(tmp_path: Path, stem: str) -> tuple[Path, Path]:
    (tmp_path / "_source").mkdir()
    source = shutil.copy(NOTEBOOKS / "_source" / f"{stem}.py", tmp_path / "_source")
    notebook = shutil.copy(NOTEBOOKS / f"{stem}.ipynb", tmp_path)
    return Path(source), Path(notebook)


def test_check_reports_an_edited_source(builder, tmp_path):
    source, _ = _copy_pair(tmp_path, "00_quickstart")
    assert builder.check(tmp_path) == []
    text = source.read_text()
    assert text.count('volume_size: int = 16 ') == 1
    source.write_text(text.replace('volume_size: int = 16 ', 'volume_size: int = 32 '))
    problems = builder.check(tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith("00_quickstart.ipynb: cell 2 (code) differs from _source/00_quickstart.py")
    assert "volume_size: int = 32" in problems[0]


def test_check_reports_a_changed_tag_and_volatile_metadata(builder, tmp_path):
    source, notebook = _copy_pair(tmp_path, "00_quickstart")
    source.write_text(source.read_text().replace('tags=["nbval-ignore-output"]', 'tags=["nbval-skip"]', 1))
    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["papermill"] = {"duration": 1.0}
    nbformat.write(nb, notebook)
    (problem,) = builder.check(tmp_path)
    assert "in its tags" in problem and "nbval-skip" in problem and "metadata.papermill" in problem


def test_check_reports_a_notebook_without_source(builder, tmp_path):
    _copy_pair(tmp_path, "00_quickstart")
    shutil.copy(NOTEBOOKS / "05_report.ipynb", tmp_path)
    assert builder.check(tmp_path) == ["05_report.ipynb: no source in _source/"]
