"""What a verdict means, in words written from its numbers: the closing paragraph of every claim notebook and of
the report. Nothing here is hard-coded per notebook: the text follows the claim records
(:func:`~semscale_lib.studies.claims.claim_record`) — verdict, estimate and CI, the paper's figure, the smallest
effect the design detects, why a claim is not testable, how well the models were trained.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

#: The unit each kind of verdict record measures its estimate in, for sentences.
UNITS = {"paired": "points", "negligible gain": "points", "correlation": "r", "dependent correlation": "r",
         "pooled correlation": "r"}
_AGAINST = {"paired": "no gain (0)", "negligible gain": "its margin", "correlation": "no correlation (0)",
            "dependent correlation": "no difference (0)", "pooled correlation": "no correlation (0)"}


def _finite(value) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def _number(value, unit: str) -> str:
    if not _finite(value):
        return "undefined"
    return f"{value:+.2f}" + (" points" if unit == "points" else "")


def _ci(claim: Mapping, unit: str) -> str:
    low, high = claim.get("ci_low"), claim.get("ci_high")
    if not (_finite(low) and _finite(high)):
        return "no confidence interval"
    if unit == "points" and max(abs(low), abs(high)) > 100:
        return "a CI wider than ±100 points (no power)"
    return f"95 % CI [{low:+.2f}, {high:+.2f}]" if unit != "points" else f"95 % CI [{low:+.2f}, {high:+.2f}] points"


def _power(numbers: Mapping, unit: str) -> str:
    detectable, n = numbers.get("detectable_effect"), numbers.get("n")
    if not _finite(detectable):
        return ""
    what = "seeds" if unit == "points" else "classes" if numbers.get("kind") != "pooled correlation" else "datasets"
    size = f"{detectable:.2f}" + (" points" if unit == "points" else "")
    return f"with {n} {what} this design detects an effect of {size} or more with 80 % power"


def claim_meaning(claim: Mapping) -> str:
    """One paragraph (markdown) on one claim record: what its verdict means, how large the effect is next to the
    paper's figure, what the design could detect, and — when it is inconclusive or not testable — why."""
    numbers = dict(claim.get("numbers") or {})
    kind = numbers.get("kind", "paired")
    unit = UNITS.get(kind, "")
    verdict, estimate = claim["verdict"], claim.get("estimate")
    paper = claim.get("paper_value")
    lines = [f"**{claim['claim']}** ({claim.get('dataset', '')}): **{verdict}**."]
    ours = f"Our estimate is {_number(estimate, unit)} ({_ci(claim, unit)})"
    if _finite(paper) and (claim.get("scope") or "paper") == "paper":
        ours += f"; the paper's figure is {_number(paper, unit)} ({claim.get('paper', '')})"
    lines.append(ours + ".")
    power = _power(numbers, unit)
    if verdict == "held":
        lines.append(f"The whole CI lies on the claim's side of {_AGAINST.get(kind, 'its threshold')}: on this data the "
                     "claim holds at the 95 % level" + (f" ({power})." if power else "."))
    elif verdict == "contradicted":
        lines.append(f"The whole CI lies on the other side of {_AGAINST.get(kind, 'its threshold')}: on this data the "
                     "claim fails at the 95 % level" + (f" ({power})." if power else "."))
    elif verdict == "inconclusive":
        lines.append("The CI contains both the claim's effect and its absence, so the data decide nothing either "
                     "way — this is not a refutation" + (f"; {power}" if power else "") + ".")
    else:
        reason = numbers.get("reason") or claim.get("reason")
        lines.append(f"No verdict could be formed: {reason}." if reason else "No verdict could be formed.")
    fit = _fit(numbers)
    if fit:
        lines.append(fit)
    if claim.get("edge"):
        lines.append(f"On the edge: {claim['edge']}, so another CPU may give another verdict.")
    return " ".join(lines)


def _fit(numbers: Mapping) -> str:
    """How well the models behind a claim were trained, when the claim carries it."""
    parts = []
    if _finite(numbers.get("train_top1")):
        parts.append(f"training top-1 {100 * numbers['train_top1']:.1f} %")
    if _finite(numbers.get("val_top1")):
        parts.append(f"validation top-1 {100 * numbers['val_top1']:.1f} %")
    text = ("The models reached " + " and ".join(parts) + " (means over the runs)") if parts else ""
    gain = numbers.get("budget_gain")
    if _finite(gain):
        text += ("; d" if text else "D") + (f"oubling the epochs added {gain:+.1f} points of validation top-1"
                                           + (" — at the plateau" if numbers.get("plateaued") else
                                              " — not yet at the plateau"))
    return text + "." if text else ""


def meaning(claims: Iterable[Mapping]) -> str:
    """The closing section of a notebook: one paragraph per claim (:func:`claim_meaning`), blank lines between."""
    return "\n\n".join(claim_meaning(claim) for claim in claims)


__all__ = ["UNITS", "claim_meaning", "meaning"]
