"""What trained a run: the package version and a digest of the code that decides what a run trains.

A run folder is reused by its settings (:func:`~semscale_lib.training.reuse.settings_key`); the digest is part of
that key, so after a change to the training code a run trained by the old code is never reused or resumed: a new
run is trained into a new folder and the old folder stays as it was. The digest covers :data:`TRAINING_CODE` with
docstrings and comments removed (of the syntax tree, unparsed), so editing prose does not retrain anything.
"""
from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "semscale"
PACKAGE_DIR = Path(__file__).resolve().parent.parent
DIGEST_LENGTH = 12        # hex digits

#: The modules (paths under semscale_lib/, globs allowed) whose code decides what a run trains and records: the
#: trainer and its config/data/run folder, the data loaders and long-tailed splits, losses, models, class-weight
#: rules, DSB and the semantic scales / imbalance and difficulty measures it re-weights by, and the metrics.
TRAINING_CODE = ("training/*.py", "data/*.py", "losses.py", "models.py", "weights.py", "dsb.py", "scale.py",
                 "imbalance.py", "difficulty.py", "metrics.py")
#: Matched by TRAINING_CODE but deciding nothing about a run: downloading data, the train command's flags.
NOT_TRAINING_CODE = ("data/fetch.py", "training/flags.py")


def package_version() -> str:
    """The installed package's version (importlib.metadata), or ``semscale_lib.__version__`` when it is not
    installed (a plain checkout on ``sys.path``)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        from .. import __version__
        return __version__


def training_modules() -> list[Path]:
    """The files of :data:`TRAINING_CODE`, sorted by their path under semscale_lib/."""
    found = {path for pattern in TRAINING_CODE for path in PACKAGE_DIR.glob(pattern) if path.is_file()}
    found -= {PACKAGE_DIR / name for name in NOT_TRAINING_CODE}
    return sorted(found, key=lambda p: p.relative_to(PACKAGE_DIR).as_posix())


def normalized_source(source: str) -> str:
    """Python source without comments, docstrings or other bare string statements, in one canonical layout
    (``ast.unparse``): equal for two sources that differ only in prose or formatting."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            kept = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                            and isinstance(s.value.value, str))]
            node.body = kept or [ast.Pass()]
    return ast.unparse(tree)


def source_digest(sources: dict[str, str]) -> str:
    """A DIGEST_LENGTH-hex-digit sha256 of {name: source} (names included), each source normalised by
    :func:`normalized_source`."""
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(f"{name}\n{normalized_source(sources[name])}\n".encode())
    return digest.hexdigest()[:DIGEST_LENGTH]


@functools.cache
def code_digest() -> str:
    """The digest of this checkout's training code (:data:`TRAINING_CODE`), computed once per process."""
    return source_digest({p.relative_to(PACKAGE_DIR).as_posix(): p.read_text(encoding="utf-8")
                          for p in training_modules()})


def code_record() -> dict:
    """What a run's config.json records under ``"code"``: package version, code digest and the modules hashed."""
    return {"semscale": package_version(), "digest": code_digest(),
            "modules": [p.relative_to(PACKAGE_DIR).as_posix() for p in training_modules()]}


def recorded_digest(saved: dict) -> str | None:
    """The code digest a run folder's config.json (loaded) records; None when it records none (written before
    digests were recorded: treated as other code)."""
    code = saved.get("code") if isinstance(saved, dict) else None
    digest = code.get("digest") if isinstance(code, dict) else None
    return digest if isinstance(digest, str) else None


def describe_digest(digest: str | None) -> str:
    return digest if digest is not None else "none recorded (trained before code digests were recorded)"
