"""Trained numbers across machines: what another CPU reproduces, and within what.

Untrained numbers (S′ of the data, splits, counts) come out digit for digit the same on any machine, and nbval
compares them exactly. Trained numbers do not: float sums depend on the kernels torch picks for the CPU
(``ATEN_CPU_CAPABILITY=default`` shows another kernel set on one machine), and training amplifies the last-digit
differences until a run on another CPU behaves like a nearby draw of the same seed. So each training notebook
ends with one *checked block* (:class:`CheckedBlock`): the numbers its conclusions rest on, each with the
tolerance within which another machine reproduces it, and each verdict with a note when a CI bound that decides it
lies within that tolerance of its threshold — on another CPU it may read otherwise.

The tolerances are three standard deviations of the difference between two machines, with the machine-to-machine
change of a run taken as large as the seed-to-seed change (the worst case: a chaotic run; measured here, two epochs
of LDAM moved a seed's top-1 by up to 9 points between two kernel sets, plain CE by ≈ 1), and never below a floor:

* the mean of n seeds with standard deviation s: ``max(floor, 3·s·√(2/n))`` (:func:`mean_tolerance`);
* a bound of a paired-t CI (mean difference ± t·s/√n): also the change of s itself, whose relative standard
  deviation is ≈ 1/√(2(n − 1)) (:func:`paired_bound_tolerance`);
* a correlation over classes and its Fisher-z bounds: a fixed 0.15 in r (measured: up to 0.08 between kernel
  sets), 0.2 for a difference of two correlations.

nbval compares a checked block with :func:`compare_checked` (wired in ``notebooks/conftest.py`` for cells tagged
:data:`TOLERANCE_TAG`): every line that is not a number or a verdict exactly; a number within the tolerance the
committed block states; a verdict equal, unless either side says it is on the edge.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from ..verdicts import VERDICTS

#: The cell tag that makes nbval compare a cell's output by :func:`compare_checked` instead of exactly.
TOLERANCE_TAG = "semscale-tolerance"
#: Standard deviations of the machine-to-machine difference a tolerance spans.
SPREAD = 3.0
#: Smallest tolerances: accuracy and gains in points, correlations in r.
POINTS_FLOOR = 1.0
CORRELATION_TOLERANCE = 0.15
CORRELATION_DIFFERENCE_TOLERANCE = 0.2
HEADER = "Checked across machines (a number within ± its tolerance; a verdict on the edge may read otherwise):"
EDGE = " — on the edge:"

_NUMBER = re.compile(r"^(?P<label>\S.*?) = (?P<value>\S+) ± (?P<tolerance>\S+)$")
_VERDICT = re.compile(r"^(?P<label>\S.*?) : (?P<verdict>" + "|".join(VERDICTS) + r")(?P<edge>" + EDGE + r".*)?$")


def mean_tolerance(sd: float, n: int, *, floor: float = POINTS_FLOOR) -> float:
    """Tolerance of a mean over ``n`` seeds whose per-seed values have standard deviation ``sd`` (same units):
    ``max(floor, SPREAD · sd · √(2/n))`` — the difference of two such means when each machine's seeds scatter
    like fresh draws. ``floor`` for n < 2 or an undefined ``sd``."""
    if n < 2 or not math.isfinite(sd):
        return floor
    return max(floor, SPREAD * sd * math.sqrt(2.0 / n))


def paired_bound_tolerance(sd: float, n: int, *, confidence: float = 0.95, floor: float = POINTS_FLOOR) -> float:
    """Tolerance of a bound of the paired-t CI mean(d) ± t·sd/√n over ``n`` seeds (units of d): the mean moves by
    sd·√(2/n) and the half-width by t·(sd/√n)·√(2 · 1/(2(n − 1))) between two machines (the standard deviation of
    a sample sd is ≈ sd/√(2(n − 1))); ``SPREAD`` times their root sum of squares, at least ``floor``."""
    if n < 2 or not math.isfinite(sd):
        return floor
    t = stats.t.ppf((1 + confidence) / 2, n - 1)
    spread = sd * math.sqrt(2.0 / n + t * t / (n * (n - 1)))
    return max(floor, SPREAD * spread)


@dataclass(frozen=True)
class ClaimTolerance:
    """Tolerances of a verdict record's estimate and of its CI bounds, in the estimate's units."""
    estimate: float
    bound: float

    def to_dict(self) -> dict:
        return {"estimate": self.estimate, "bound": self.bound}


def record_tolerance(record) -> ClaimTolerance:
    """The tolerances of a :mod:`semscale_lib.verdicts` record, by its kind: paired gains (and "negligible gain")
    from their seeds' spread, correlations fixed in r."""
    if record.kind in ("paired", "negligible gain"):
        sd, n = getattr(record, "sd_diff", float("nan")), record.n
        return ClaimTolerance(mean_tolerance(sd, n),
                              paired_bound_tolerance(sd, n, confidence=record.confidence))
    if record.kind == "dependent correlation":
        return ClaimTolerance(CORRELATION_DIFFERENCE_TOLERANCE, CORRELATION_DIFFERENCE_TOLERANCE)
    return ClaimTolerance(CORRELATION_TOLERANCE, CORRELATION_TOLERANCE)


def thresholds(record) -> list[float]:
    """The values a CI bound of ``record`` is compared with to decide its verdict: 0 for gains and correlations,
    also ``r_min`` for a single correlation, the margin of a "negligible gain" claim."""
    if record.kind == "negligible gain":
        return [float(record.paper_effect)] if getattr(record, "paper_effect", None) is not None else []
    values = [0.0]
    r_min = getattr(record, "r_min", None)
    if r_min is not None and math.isfinite(r_min) and r_min != 0:
        values.append(float(r_min))
    return values


def edge_note(record, tolerance: ClaimTolerance) -> str | None:
    """Why ``record``'s verdict may read otherwise on another machine, or None: a CI bound within
    ``tolerance.bound`` of a threshold (:func:`thresholds`), or a detectable effect that depends on trained numbers
    (a paired sd, observed correlations) within ``tolerance.estimate`` of the paper's effect (the boundary between
    "inconclusive" and "not testable: underpowered")."""
    notes = []
    for name, bound in (("lower", record.ci_low), ("upper", record.ci_high)):
        if bound is None or not math.isfinite(bound):
            continue
        for threshold in thresholds(record):
            if abs(bound - threshold) <= tolerance.bound:
                notes.append(f"the CI's {name} bound {bound:+.2f} lies within ±{tolerance.bound:.2g} of {threshold:g}")
    detectable, paper = getattr(record, "detectable_effect", None), getattr(record, "paper_effect", None)
    # a single correlation's detectable effect depends on n alone, the same on every machine
    if (record.kind not in ("negligible gain", "correlation") and paper is not None and detectable is not None
            and math.isfinite(detectable) and abs(detectable - abs(paper)) <= tolerance.estimate):
        notes.append(f"the detectable effect {detectable:.2f} lies within ±{tolerance.estimate:.2g} of the paper's "
                     f"{abs(paper):.2f}")
    return "; ".join(dict.fromkeys(notes)) or None


def _number_text(value, decimals: int, signed: bool) -> str:
    if value is None or not math.isfinite(float(value)):
        return "undefined"
    return f"{float(value) + 0.0:{'+' if signed else ''}.{decimals}f}"


class CheckedBlock:
    """The numbers a notebook's conclusions rest on, each with its tolerance, and its verdicts — shown as plain
    text (one line each) and compared across machines by :func:`compare_checked`. Labels must be unique."""

    def __init__(self):
        self.lines: list[str] = [HEADER]
        self._labels: set[str] = set()

    def _label(self, label: str) -> str:
        label = " ".join(str(label).split())
        if not label or " = " in label or " : " in label:
            raise ValueError(f"a checked label must be non-empty without ' = ' or ' : ', got {label!r}")
        if label in self._labels:
            raise ValueError(f"the checked label {label!r} is used twice")
        self._labels.add(label)
        return label

    def number(self, label: str, value, tolerance: float, *, decimals: int = 2, signed: bool = False
               ) -> "CheckedBlock":
        """A number (``value``; NaN → "undefined") with its tolerance (same units, > 0)."""
        if not tolerance > 0:
            raise ValueError(f"tolerance must be > 0, got {tolerance}")
        self.lines.append(f"{self._label(label)} = {_number_text(value, decimals, signed)} ± "
                          f"{tolerance:.{max(decimals, 2)}g}")
        return self

    def verdict(self, label: str, verdict: str, edge: str | None = None) -> "CheckedBlock":
        """A verdict, with ``edge`` saying why it may read otherwise on another machine (or None)."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
        self.lines.append(f"{self._label(label)} : {verdict}" + (f"{EDGE} {edge}" if edge else ""))
        return self

    def means(self, frame: pd.DataFrame, *, by: str, column: str, name: str, scale: float = 100.0,
              decimals: int = 2) -> "CheckedBlock":
        """One line per group of ``frame`` (first-seen order): the mean of ``column`` × ``scale`` over its rows
        (seeds), ± :func:`mean_tolerance` of their spread. E.g. ``means(runs, by="method", column="top1",
        name="top-1 (%)")``."""
        for key, part in frame.groupby(by, sort=False)[column]:
            values = scale * part.to_numpy(np.float64)
            sd = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
            self.number(f"{name} · {key}", values.mean(), mean_tolerance(sd, len(values)), decimals=decimals)
        return self

    def claims(self, claims: Iterable[Mapping], *, decimals: int = 2) -> "CheckedBlock":
        """Each claim record (:func:`~semscale_lib.studies.claims.claim_record`, or a row of ``read_claims``):
        its estimate and CI bounds with the record's tolerances, then its verdict with its edge note. Sorted by
        claim and dataset: a notebook may list its claims in an order that follows trained numbers (a ranking).
        Claims marked ``checked: False`` (whether they exist at all depends on trained numbers) are left out."""
        kept = [c for c in claims if c.get("checked") is not False]
        for claim in sorted(kept, key=lambda c: (str(c["claim_id"]), str(c["dataset"]))):
            label = f"{claim['claim_id']} · {claim['dataset']}"
            tolerance = claim["tolerance"]
            self.number(f"{label} · estimate", claim["estimate"], tolerance["estimate"], decimals=decimals,
                        signed=True)
            for side in ("ci_low", "ci_high"):
                self.number(f"{label} · {side.replace('_', ' ')}", claim[side], tolerance["bound"],
                            decimals=decimals, signed=True)
            self.verdict(f"{label} · verdict", claim["verdict"], claim.get("edge"))
        return self

    def __repr__(self) -> str:
        return "\n".join(self.lines)

    def _repr_pretty_(self, printer, cycle) -> None:   # IPython: the text as is
        printer.text(repr(self))


def _float(text: str) -> float:
    return float("nan") if text == "undefined" else float(text)


def compare_checked(reference: str, actual: str) -> list[str]:
    """How ``actual`` departs from the committed ``reference`` checked block (text of :class:`CheckedBlock`):
    one line per problem, empty when they agree. Numbers agree when both are undefined, or both finite within the
    larger of the two tolerances: each block's tolerance is its own machine's estimate of the same
    machine-to-machine spread (from its own seeds), so the comparison is symmetric, and a machine whose seeds
    spread more than the committed ones is not failed for it. Verdicts agree when equal or when either side is
    on the edge; every other line must be equal."""
    ours, theirs = reference.splitlines(), actual.splitlines()
    problems = []
    if len(ours) != len(theirs):
        problems.append(f"{len(theirs)} lines, the committed block has {len(ours)}")
    for expected, got in zip(ours, theirs):
        if expected == got:
            continue
        a, b = _NUMBER.match(expected), _NUMBER.match(got)
        if a and b and a["label"] == b["label"]:
            x, y = _float(a["value"]), _float(b["value"])
            tolerance = max(float(a["tolerance"]), float(b["tolerance"]))
            if (math.isnan(x) and math.isnan(y)) or abs(x - y) <= tolerance:
                continue
            problems.append(f"{a['label']}: {b['value']} is not within ± {tolerance:.2g} of the committed "
                            f"{a['value']}")
            continue
        a, b = _VERDICT.match(expected), _VERDICT.match(got)
        if a and b and a["label"] == b["label"]:
            if a["verdict"] == b["verdict"] or a["edge"] or b["edge"]:
                continue
            problems.append(f"{a['label']}: {b['verdict']}, the committed block says {a['verdict']} (neither "
                            "on the edge)")
            continue
        problems.append(f"line differs: {got!r}, committed {expected!r}")
    return problems


def claim_tolerance_fields(record) -> dict:
    """The fields :func:`~semscale_lib.studies.claims.claim_record` adds to a claim: ``tolerance`` (estimate and
    bound, :func:`record_tolerance`) and ``edge`` (:func:`edge_note`)."""
    tolerance = record_tolerance(record)
    return {"tolerance": tolerance.to_dict(), "edge": edge_note(record, tolerance)}


__all__ = ["CORRELATION_DIFFERENCE_TOLERANCE", "CORRELATION_TOLERANCE", "CheckedBlock", "ClaimTolerance", "HEADER",
           "POINTS_FLOOR", "SPREAD", "TOLERANCE_TAG", "claim_tolerance_fields", "compare_checked", "edge_note",
           "mean_tolerance", "paired_bound_tolerance", "record_tolerance", "thresholds"]
