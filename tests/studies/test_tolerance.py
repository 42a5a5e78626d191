"""Trained numbers across machines: the tolerances (closed forms), the checked block's text, the comparison nbval
uses for it, and nbval itself on small notebooks whose committed numbers are moved within and beyond tolerance."""
from __future__ import annotations

import math
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import nbformat
import pytest

from semscale_lib.studies.tolerance import (
    HEADER, TOLERANCE_TAG, CheckedBlock, ClaimTolerance, compare_checked, edge_note, mean_tolerance,
    paired_bound_tolerance, record_tolerance,
)
from semscale_lib.verdicts import correlation_verdict, paired_verdict

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------------ tolerances
def test_mean_tolerance_is_three_sds_of_a_difference_of_means():
    assert mean_tolerance(2.0, 8) == pytest.approx(3 * 2.0 * math.sqrt(2 / 8))   # 3.0
    assert mean_tolerance(0.1, 8) == 1.0                                          # the floor
    assert mean_tolerance(float("nan"), 3) == 1.0 and mean_tolerance(5.0, 1) == 1.0
    assert mean_tolerance(0.01, 8, floor=0.001) == pytest.approx(0.015)


def test_paired_bound_tolerance_adds_the_spread_of_the_sd():
    t = 4.302652729911275                       # t_{0.975, 2}
    expected = 3 * math.sqrt(2 / 3 + t * t / (3 * 2))
    assert paired_bound_tolerance(1.0, 3) == pytest.approx(expected)      # ≈ 5.81
    assert paired_bound_tolerance(1.0, 3) > mean_tolerance(1.0, 3)
    assert paired_bound_tolerance(0.0, 10) == 1.0


def test_record_tolerance_by_kind():
    paired = paired_verdict([50.0, 52.0, 51.0, 53.0], [53.0, 53.5, 55.0, 54.0])
    tolerance = record_tolerance(paired)
    assert tolerance.estimate == pytest.approx(mean_tolerance(paired.sd_diff, 4))
    assert tolerance.bound == pytest.approx(paired_bound_tolerance(paired.sd_diff, 4))
    assert record_tolerance(correlation_verdict(range(10), [0, 2, 1, 3, 5, 4, 6, 8, 7, 9])) == \
        ClaimTolerance(0.15, 0.15)


def test_edge_note_names_the_bound_near_its_threshold():
    record = paired_verdict([50.0, 51.0, 52.0], [50.5, 52.0, 52.4])   # gains 0.5, 1.0, 0.4
    assert edge_note(record, ClaimTolerance(1.0, 1.0)) is not None
    assert "lower bound" in edge_note(record, ClaimTolerance(1.0, 1.0))
    far = paired_verdict([50.0, 51.0, 52.0], [60.0, 61.5, 61.0])       # CI far above 0
    assert edge_note(far, ClaimTolerance(1.0, 1.0)) is None


# ------------------------------------------------------------------------------------------------ the block
def _block(value=48.58, verdict="inconclusive", edge=None, tolerance=2.0) -> str:
    return repr(CheckedBlock().number("top-1 (%) · CE", value, tolerance).verdict("gain · verdict", verdict, edge))


def test_block_text():
    assert _block() == f"{HEADER}\ntop-1 (%) · CE = 48.58 ± 2\ngain · verdict : inconclusive"
    assert repr(CheckedBlock().number("r", float("nan"), 0.15)).endswith("r = undefined ± 0.15")
    assert repr(CheckedBlock().number("gain", 0.5, 1.0, signed=True)).endswith("gain = +0.50 ± 1")


def test_block_refuses_bad_labels_and_verdicts():
    block = CheckedBlock().number("a", 1.0, 1.0)
    with pytest.raises(ValueError, match="used twice"):
        block.number("a", 2.0, 1.0)
    with pytest.raises(ValueError, match="without"):
        block.number("x = y", 2.0, 1.0)
    with pytest.raises(ValueError, match="verdict must be"):
        block.verdict("b", "confirmed")
    with pytest.raises(ValueError, match="tolerance"):
        block.number("c", 1.0, 0.0)


@pytest.mark.parametrize("actual, problems", [
    (_block(), 0),
    (_block(value=50.4), 0),                        # within ± 2
    (_block(value=46.6), 0),
    (_block(value=50.7), 1),                        # beyond
    (_block(value=52.5, tolerance=4.0), 0),         # within the larger tolerance: this machine's seeds spread more
    (_block(value=52.7, tolerance=4.0), 1),         # beyond both
    (_block(value=float("nan")), 1),                # a number became undefined
    (_block(verdict="held"), 1),                    # a verdict flipped, neither side on the edge
    (_block(verdict="held", edge="the CI's lower bound +0.20 lies within ±1 of 0"), 0),
    (_block() + "\nextra : held", 1),
    (_block().replace("Checked", "checked"), 1),    # any other line: exact
])
def test_compare_checked(actual, problems):
    assert len(compare_checked(_block(), actual)) == problems
    assert len(compare_checked(actual, _block())) == problems      # symmetric: either side may be the committed one


def test_compare_checked_accepts_a_flip_when_the_committed_verdict_was_on_the_edge():
    committed = _block(verdict="inconclusive", edge="the CI's lower bound -0.10 lies within ±1 of 0")
    assert compare_checked(committed, _block(verdict="held")) == []
    (problem,) = compare_checked(_block(), _block(value=55.0))
    assert "top-1 (%) · CE" in problem and "55.00" in problem and "48.58" in problem


# ------------------------------------------------------------------------------------------------ nbval itself
def _notebook(path: Path, *, committed: float, exact: str = "3\n") -> None:
    """A notebook whose checked cell computes top-1 48.58 ± 2 and whose committed output says ``committed``; its
    exact cell prints 3 and its committed output says ``exact``."""
    def stream(text):
        return nbformat.v4.new_output("stream", name="stdout", text=text)

    checked = nbformat.v4.new_code_cell(
        "from semscale_lib.studies.tolerance import CheckedBlock\n"
        "CheckedBlock().number('top-1 (%) · CE', 48.58, 2.0)", execution_count=1,
        metadata={"tags": ["nbval-check-output", TOLERANCE_TAG]})
    checked.outputs = [nbformat.v4.new_output(
        "execute_result", data={"text/plain": repr(CheckedBlock().number("top-1 (%) · CE", committed, 2.0))},
        execution_count=1)]
    exact_cell = nbformat.v4.new_code_cell("print(1 + 2)", execution_count=2,
                                           metadata={"tags": ["nbval-check-output"]})
    exact_cell.outputs = [stream(exact)]
    nb = nbformat.v4.new_notebook(cells=[checked, exact_cell])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.slow
def test_nbval_passes_within_tolerance_and_fails_beyond(tmp_path):
    shutil.copy(REPO / "notebooks" / "conftest.py", tmp_path / "conftest.py")
    cases = {"same": dict(committed=48.58), "within": dict(committed=47.0), "beyond": dict(committed=51.0),
             "exact_moved": dict(committed=48.58, exact="4\n")}
    for name, kwargs in cases.items():
        _notebook(tmp_path / f"{name}.ipynb", **kwargs)
    report = tmp_path / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-p", "no:xdist",
                    "-q", f"--junitxml={report}", "--rootdir", str(tmp_path),
                    *[str(tmp_path / f"{name}.ipynb") for name in cases]],
                   cwd=tmp_path, capture_output=True, text=True, timeout=300)
    failed = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        notebook = case.get("classname", "") + case.get("name", "")
        for name in cases:
            if name in notebook:
                failed.setdefault(name, []).append(case.find("failure") is not None)
    assert {name: any(flags) for name, flags in failed.items()} == {
        "same": False, "within": False, "beyond": True, "exact_moved": True}
